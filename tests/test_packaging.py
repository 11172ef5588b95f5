"""ganforge installed as a package (not editable), used from a folder that is not the repository."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")


def test_an_installed_ganforge_trains_and_samples_from_any_folder(tmp_path) -> None:
    site, work = tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    build = subprocess.run(
        [*pip, "--target", str(site), str(REPO_ROOT)], capture_output=True, text=True, timeout=300
    )
    assert build.returncode == 0, build.stderr[-3000:]
    conf = site / "ganforge/conf"
    assert (conf / "train.yaml").is_file() and not conf.is_symlink()  # a copy, not the link to the repo
    assert (conf / "model/pix2pix.yaml").is_file() and (conf / "hydra/launcher/slurm.yaml").is_file()

    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("PROJECT_ROOT", None)

    def run(*cmd: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    where = run(sys.executable, "-c", "import ganforge; print(ganforge.__file__)")
    assert where.stdout.strip() == str(site / "ganforge/__init__.py")
    run(
        str(site / "bin/ganforge-train"),
        "trainer=cpu",
        "trainer.max_steps=2",
        "data.max_samples=64",
        "data.batch_size=16",
        "model=mlp_gan",
        "~callbacks.model_summary",
        "hydra.run.dir=run",
    )
    assert (work / "run/checkpoints/last.ckpt").is_file() and (work / "run/config.yaml").is_file()
    run(str(site / "bin/ganforge-generate"), "ckpt_path=run/checkpoints/last.ckpt", "n=4", "out=grid.png",
        "hydra.run.dir=gen")  # fmt: skip
    assert (work / "grid.png").is_file()
