"""Fixtures composing the real Hydra configs (as lightning-hydra-template does) for tiny CPU runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ganforge.train import CONFIG_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def tiny_overrides(output_dir: Path) -> list[str]:
    """A run of a few steps on a small slice, on the CPU, writing under ``output_dir``."""
    return [
        "trainer=cpu",
        "trainer.max_steps=4",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "data.max_samples=256",
        "data.batch_size=16",
        "data.num_workers=0",
        "callbacks.sample_grid.every_n_steps=2",
        "callbacks.model_checkpoint.every_n_train_steps=2",
        "~callbacks.model_summary",
        f"paths.output_dir={output_dir}",
        f"paths.data_dir={output_dir}/data",
    ]


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg("model=mlp_gan", ...)``: the real train config with tiny-run overrides."""

    def _compose(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        out = output_dir or tmp_path / "run"
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(
                config_name="train", overrides=[*tiny_overrides(out), *overrides], return_hydra_config=True
            )
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def fashion_mnist_available() -> None:
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed (.ci/run installs it)")
