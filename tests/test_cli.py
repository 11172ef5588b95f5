"""The command line as users run it: Hydra multirun sweeps and data-parallel training (CPU processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")

TINY = [
    "trainer.max_steps=3",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "data.max_samples=256",
    "data.batch_size=16",
    "callbacks.sample_grid.every_n_steps=3",
    "callbacks.model_checkpoint.every_n_train_steps=3",
]


def run_cli(
    *args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_multirun_sweep_gives_each_run_its_own_folder(tmp_path) -> None:
    run_cli("-m", "model=dcgan,mlp_gan", "loss=hinge,wgan_gp", *TINY, f"hydra.sweep.dir={tmp_path}")
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    combos = set()
    for job in jobs:
        assert (job / "checkpoints/last.ckpt").is_file()
        assert (job / "samples/step_0000003.png").is_file()
        config = (job / "config.yaml").read_text()
        model = "DCGANGenerator" if "DCGANGenerator" in config else "MLPGenerator"
        loss = "HingeLoss" if "HingeLoss" in config else "WassersteinGPLoss"
        combos.add((model, loss))
    assert len(combos) == 4


def test_ddp_trainer_runs_two_processes_and_gathers_metrics(tmp_path) -> None:
    # trainer=ddp on CPU processes (gloo); SyncBatchNorm needs CUDA, so it is off here. Each process
    # generates its share of the 101 FID samples; torchmetrics gathers them, so both report the same.
    proc = run_cli(
        "trainer=ddp",
        *TINY,
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",
        "callbacks=metrics",
        "callbacks.metrics.extractor=tiny",
        "callbacks.metrics.num_samples=101",
        "callbacks.metrics.every_n_steps=3",
        "callbacks.metrics.kid_subset_size=50",
        f"callbacks.metrics.cache_dir={tmp_path}/cache",
        f"hydra.run.dir={tmp_path}/run",
    )
    output = proc.stderr + proc.stdout
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in output
    reports = [line.split("ganforge")[-1] for line in output.splitlines() if "step 3, " in line]
    assert len(reports) == 2 and reports[0] == reports[1], reports  # rank 0 and rank 1 agree
    assert "101 samples" in reports[0]
    assert (tmp_path / "run/checkpoints/last.ckpt").is_file()
    assert (tmp_path / "run/samples/step_0000003.png").is_file()


def test_ddp_resume_continues_every_rank_exactly(tmp_path) -> None:
    """Each rank draws its own latents, and a resumed 2-process run ends with the uninterrupted weights."""
    from ganforge.checkpoint import load_checkpoint

    common = [
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "data.max_samples=256",
        "data.batch_size=16",
        "callbacks.sample_grid.every_n_steps=100",
        "callbacks.model_checkpoint.every_n_train_steps=100",
    ]
    run_cli(*common, "trainer.max_steps=4", f"hydra.run.dir={tmp_path}/straight")
    run_cli(*common, "trainer.max_steps=2", f"hydra.run.dir={tmp_path}/half")
    half = load_checkpoint(tmp_path / "half/checkpoints/last.ckpt")
    rank0, rank1 = half["ganforge"]["rng_per_rank"]
    assert not torch.equal(rank0["torch"], rank1["torch"])  # per-rank streams, not copies of one
    resume = f"ckpt_path={tmp_path}/half/checkpoints/last.ckpt"
    run_cli(*common, "trainer.max_steps=4", resume, f"hydra.run.dir={tmp_path}/resumed")
    straight = load_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")["state_dict"]
    resumed = load_checkpoint(tmp_path / "resumed/checkpoints/last.ckpt")["state_dict"]
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
