"""Training entry point: compose the config, check everything, then fit.

``python train.py model=dcgan loss=hinge data=cifar10`` (or the ``ganforge-train`` console script).

Exit status: 0 when training finished, 2 for a ganforge error (bad config or data, diverged run),
143 (128 + SIGTERM) when the run was preempted: on SIGTERM it finishes the current step, writes
``checkpoints/last.ckpt`` and stops; ``ckpt_path=<that file>`` continues it exactly.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationKeyError

from ganforge.callbacks.checkpoint import AtomicCheckpointIO
from ganforge.checkpoint import check_fits, load_checkpoint
from ganforge.errors import ConfigError, GanforgeError
from ganforge.precision import set_tf32
from ganforge.utils import instantiate, instantiate_dict, run_cli, save_run_config

log = logging.getLogger("ganforge")
# Lightning 2.6 calls a pytree API that newer torch deprecates; nothing for users to act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# the package's configs (in the source tree a link to conf/ at the root, in an install a copy)
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
EXIT_PREEMPTED = 143  # 128 + SIGTERM, as a shell reports a process ended by SIGTERM


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build data, model, callbacks, loggers and trainer from ``cfg``; validate; fit.

    Returns the trainer's final logged metrics and the objects, for tests and sweeps; ``preempted`` is
    true when a SIGTERM stopped the run early (after writing ``last.ckpt``).
    """
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    if cfg.get("tf32") is not None:
        set_tf32(bool(cfg.tf32))

    datamodule = instantiate(cfg.data)
    callbacks = instantiate_dict(cfg.get("callbacks"), "callback")
    loggers = instantiate_dict(cfg.get("logger"), "logger")
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=_plugins(cfg.trainer)
    )

    # Everything that can be wrong with the inputs fails here, before the first step.
    datamodule.trainer = trainer
    datamodule.setup("fit")
    with open_dict(cfg):
        cfg.data_info.num_classes = datamodule.num_classes  # ${data_info.num_classes} in model configs
    model = _model(cfg, loss=instantiate(cfg.loss))
    model.check_data(datamodule)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    ckpt_path = cfg.get("ckpt_path")
    start_step = 0
    if ckpt_path:
        ckpt = load_checkpoint(ckpt_path)  # clear error for a missing or corrupt file
        check_fits(ckpt_path, ckpt, model, model.run_config)
        start_step = int(ckpt.get("global_step", 0))
        del ckpt
    preempted = False
    if steps_left(trainer.max_steps, start_step, ckpt_path) != 0:
        preempted = _fit(cfg, trainer, model, datamodule, ckpt_path, start_step)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return {
        "metrics": metrics,
        "trainer": trainer,
        "model": model,
        "datamodule": datamodule,
        "preempted": preempted,
    }


def _fit(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    ckpt_path: str | None,
    start_step: int,
) -> bool:
    """Record the config and train; returns whether a SIGTERM stopped the run (after writing last.ckpt)."""
    if trainer.is_global_zero:
        save_run_config(cfg, Path(cfg.paths.output_dir), start_step)
    log.info(
        "Training %s on %s (%d images) -> %s",
        type(model.G).__name__,
        datamodule.name,
        len(datamodule.dataset),
        cfg.paths.output_dir,
    )
    # Checkpoints hold optimizer factories and RNG states, so they are full pickles: load only your own.
    try:
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
    except SIGTERMException:
        # Lightning stopped after the step in progress; ganforge's Checkpoint wrote last.ckpt for it.
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        resume = f"Resume with ckpt_path={last}" if last else "No checkpoint (no step done, save_last off)."
        log.warning("Received SIGTERM: stopped after step %d. %s", trainer.global_step, resume)
        return True
    finally:
        _finish_wandb()
    return False


def steps_left(max_steps: int, start_step: int, ckpt_path: str | None) -> int | None:
    """Steps this run will train (``None``: bounded by epochs or time); 0 is said, never silent.

    ``trainer.max_steps=0`` is an error. A resume whose checkpoint already reached ``max_steps`` (a
    finished run, a requeued job) trains nothing and says so: exit status 0, as for a finished run.
    """
    if max_steps == 0 or max_steps < -1:
        raise ConfigError(
            f"trainer.max_steps={max_steps} trains nothing: give the number of steps (batches) to train, "
            "or -1 to train for trainer.max_epochs"
        )
    if max_steps == -1:
        return None
    if start_step >= max_steps:
        log.warning(
            "Nothing to train: checkpoint %s is at step %d and trainer.max_steps=%d is reached. "
            "To train further, raise trainer.max_steps above %d",
            ckpt_path,
            start_step,
            max_steps,
            start_step,
        )
        return 0
    return max_steps - start_step


def compose_config(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """The config that ``python <config_name>.py <overrides>`` would run, for scripts and tests.

    ``${hydra:...}`` interpolations resolve against this composition; the ``hydra`` node itself is
    dropped, as ``@hydra.main`` keeps it from the task.
    """
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _model(cfg: DictConfig, loss: Any) -> Any:
    """The model; one whose config reads a data key that this data lacks (``${data.resolution}`` of an
    image model on 2-D points) fails with the options that fit, not with omegaconf's bare key error."""
    try:
        return instantiate(cfg.model, loss=loss)
    except InterpolationKeyError as e:
        found = re.search(r"'data\.(\w+)'", str(e))
        if found is None:
            raise
        key = found[1]
        choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
        model, data = choices.get("model", "?"), choices.get("data", "?")
        kinds = getattr(hydra.utils.get_class(cfg.model._target_), "data_kinds", ())
        with_key = _options("data", lambda conf: key in conf and _kind(conf) in kinds)
        data_kind = _kind(cfg.data)

        def fits_data(conf: DictConfig) -> bool:  # trains on this data's kind and does not read the key
            family = (
                getattr(hydra.utils.get_class(conf._target_), "data_kinds", ()) if "_target_" in conf else ()
            )
            return data_kind in family and f"${{data.{key}}}" not in OmegaConf.to_yaml(conf)

        without = _options("model", fits_data)
        raise ConfigError(
            f"model={model} reads data.{key}, which data={data} lacks: the model needs data that sets it "
            f"(data={with_key}). For data={data} use a model that does not read data.{key} "
            f"(model={without})"
        ) from None


def _kind(data_conf: DictConfig) -> str:
    """What a data config's datamodule yields (``images``, ``points``, ``pairs``)."""
    return getattr(hydra.utils.get_class(data_conf._target_), "kind", "images")


def _options(group: str, fits: Callable[[DictConfig], bool]) -> str:
    """The options of config group ``group`` (conf/<group>/*.yaml, unresolved, with the same group's
    options they extend merged in) for which ``fits`` holds."""
    folder = Path(CONFIG_DIR, group)

    def load(name: str, where: Path = folder) -> DictConfig:
        conf = OmegaConf.load(where / f"{name}.yaml")
        bases = []  # same-group bases, and family bases merged here (/task/paired@_here_)
        for d in conf.pop("defaults", []):
            if not isinstance(d, str) or d == "_self_" or d.startswith("override"):
                continue
            if d.startswith("/") and d.endswith("@_here_"):
                group, base = d[1 : -len("@_here_")].rsplit("/", 1)
                bases.append(load(base, Path(CONFIG_DIR, group)))
            elif "/" not in d:
                bases.append(load(d, where))
        return OmegaConf.merge(*bases, conf) if bases else conf

    names = sorted(p.stem for p in folder.glob("*.yaml"))
    return ", ".join(n for n in names if fits(load(n))) or "none"


def _plugins(trainer_cfg: DictConfig) -> list[Any]:
    """``trainer.plugins`` plus atomic checkpoint writes, unless a ``CheckpointIO`` is configured."""
    configured = trainer_cfg.get("plugins")  # objects, names ("bf16") or a list of them
    if configured is None or isinstance(configured, str):
        plugins = [] if configured is None else [configured]
    else:
        made = instantiate(configured)
        plugins = list(made) if isinstance(made, Sequence | ListConfig) else [made]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


def _finish_wandb() -> None:
    """Close the W&B run so its files (summary, offline run) are complete, also for sweeps in-process."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run_cli(_train_and_score, cfg)


def _train_and_score(cfg: DictConfig) -> float | None:
    result = train(cfg)
    if result["preempted"]:
        sys.exit(EXIT_PREEMPTED)
    return optimized_value(cfg, result["metrics"])


def optimized_value(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a sweeper (optuna) optimises; a clear error when the run never logged it."""
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    if metric not in metrics:
        logged = ", ".join(sorted(metrics)) or "nothing"
        raise GanforgeError(
            f"optimized_metric={metric!r} was not logged by this run (it logged: {logged}). "
            "Enable the callback that computes it (e.g. callbacks=metrics for metrics/fid_best) "
            "or set optimized_metric to one of the logged values"
        )
    return metrics[metric]


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
