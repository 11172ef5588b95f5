"""OmegaConf resolvers used by the configs (registered on import of ``ganforge``)."""

import importlib.util
import math
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ganforge.errors import ConfigError


def sweep_group() -> str:
    """The multirun's sweep folder (groups a sweep's runs in W&B); empty for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return ""
    hydra_cfg = HydraConfig.get()
    return str(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else ""


def package_file(package: str, name: str) -> str:
    """Path of a data file inside an installed package: ``${package_file:skimage,data/astronaut.png}``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(package, package)
        raise ConfigError(
            f"{name} comes with the package {package}, which is not installed: pip install {pip_name}"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / name)


def growth_steps(resolution: int, growth: Any) -> int:
    """``${growth_steps:${data.resolution},${model.growth}}``: the steps of a ProGAN run that grows to
    ``resolution`` and then trains one stable phase there (the default length of ``model=progan``)."""
    from ganforge.tasks.progressive import GrowthSchedule

    options = OmegaConf.to_container(growth, resolve=True) if OmegaConf.is_config(growth) else dict(growth)
    keys = ("stable_images", "fade_images", "batch_sizes", "start_resolution")
    schedule = GrowthSchedule(int(resolution), **{k: options[k] for k in keys if k in options})
    return schedule.final_step + math.ceil(schedule.stable_images / schedule.phases[-1].batch_size)


def register() -> None:
    # ${mul:${data.channels},${model.pack}}: PacGAN's D sees pack x channels
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *xs: math.prod(xs))
    # ${add:${data.input_channels},${data.channels}}: a conditional D sees input and output channels
    if not OmegaConf.has_resolver("add"):
        OmegaConf.register_new_resolver("add", lambda *xs: sum(xs))
    # ${div:${trainer.max_steps},${loss.n_critic}}: G updates in a run (schedules that follow its length)
    if not OmegaConf.has_resolver("div"):
        OmegaConf.register_new_resolver("div", lambda a, b: int(a) // int(b))
    # ${sweep_group:}: the W&B group of a multirun's jobs
    if not OmegaConf.has_resolver("sweep_group"):
        OmegaConf.register_new_resolver("sweep_group", sweep_group)
    # ${package_file:skimage,data/astronaut.png}: test photos that ship with a package
    if not OmegaConf.has_resolver("package_file"):
        OmegaConf.register_new_resolver("package_file", package_file)
    # ${growth_steps:${data.resolution},${model.growth}}: a ProGAN run's default length
    if not OmegaConf.has_resolver("growth_steps"):
        OmegaConf.register_new_resolver("growth_steps", growth_steps)
