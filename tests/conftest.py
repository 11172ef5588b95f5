"""Fixtures composing the real Hydra configs (as lightning-hydra-template does) for tiny CPU runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from ganforge.train import compose_config

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
        f"paths.log_dir={output_dir}/logs",  # caches (decoded images) stay in the test's folder
    ]


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """``python <repo>/<script> <args>`` in a subprocess from the repository root (5-minute limit)."""
    command = [sys.executable, str(REPO_ROOT / script), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Benchmark entry points called in-process (``main([... "--threads", "1"])``) set torch's thread count
    for the whole process; a later in-process run would then sum in another order than a subprocess run
    of the same config (the SIGTERM resume test compares the two bit for bit)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg("model=mlp_gan", ...)``: the real train config with tiny-run overrides."""

    def _compose(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config([*tiny_overrides(output_dir or tmp_path / "run"), *overrides])

    return _compose


@pytest.fixture
def fashion_mnist_available() -> None:
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed (.ci/run installs it)")
