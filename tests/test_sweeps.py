"""Sweeps as users run them: the Optuna search (`hparams_search=optuna`) and the joblib launcher."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import yaml

from .test_cli import TINY, run_cli
from .test_train import logged
from .wandb_records import records, wait_for_exit_record

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")
pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the `sweeps` extra")
pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="needs the `sweeps` extra")

# FID on the fast test-only extractor, at steps 2 and 3 (the end)
TINY_FID = [
    "callbacks.metrics.extractor=tiny",
    "callbacks.metrics.num_samples=100",
    "callbacks.metrics.every_n_steps=2",
    "callbacks.metrics.kid_subset_size=50",
    "callbacks.metrics.kid_subsets=10",
    "callbacks.metrics.batch_size=50",
]


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())


def test_optuna_search_minimises_best_fid(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    run_cli(
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=1",
        *TINY,
        *TINY_FID,
        f"callbacks.metrics.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    )
    jobs = job_dirs(sweep)
    assert [p.name for p in jobs] == ["0", "1"]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert math.isfinite(results["best_value"])
    # the value Optuna minimised is each trial's metrics/fid_best, as train.py returned it
    best_fids = [logged(job)["metrics/fid_best"][-1] for job in jobs]
    assert results["best_value"] == pytest.approx(min(best_fids))
    # the sampled parameters reached the runs; data.batch_size, fixed on the command line, left the space
    assert "data.batch_size" not in results["best_params"]
    lrs = set()
    for job in jobs:
        cfg = yaml.safe_load((job / "config.yaml").read_text())
        assert cfg["data"]["batch_size"] == 16
        assert "metrics" in cfg["callbacks"]
        lrs.add(cfg["model"]["optimizer_g"]["lr"])
    assert len(lrs) == 2
    assert results["best_params"]["model.optimizer_g.lr"] in lrs


def test_joblib_launcher_runs_jobs_in_parallel_in_one_wandb_group(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path / "home"), "WANDB_CONFIG_DIR": str(tmp_path / "wandb_config")}
    proc = run_cli(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "seed=1,2",
        "logger=wandb",
        *TINY,
        f"hydra.sweep.dir={sweep}",
        env=env,
    )
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    jobs = job_dirs(sweep)
    assert [p.name for p in jobs] == ["0", "1"]
    for job in jobs:
        assert (job / "checkpoints/last.ckpt").is_file()
        (run_file,) = job.glob("wandb/offline-run-*/run-*.wandb")
        wait_for_exit_record(run_file)
        (run,) = [r.run for r in records(run_file) if r.WhichOneof("record_type") == "run"]
        assert run.run_group == str(sweep)
