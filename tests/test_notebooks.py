"""Notebooks execute top to bottom on a checkpoint made here."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from ganforge.train import train

from .conftest import REPO_ROOT
from .test_generate import TINY_STYLEGAN


def _execute(ckpt, tmp_path, monkeypatch) -> tuple[str, list]:
    """Run the notebook on ``ckpt``; return its printed text and its outputs (none of them errors)."""
    monkeypatch.setenv("GANFORGE_CKPT", str(ckpt))
    nb = nbformat.read(REPO_ROOT / "notebooks/01_explore_checkpoint.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=dict(os.environ))
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    return text, [o for o in outputs if "image/png" in o.get("data", {})]


@pytest.mark.usefixtures("fashion_mnist_available")
def test_explore_checkpoint_notebook_runs(compose_cfg, tmp_path, monkeypatch) -> None:
    # FID every 2 steps with the fast test extractor, so the notebook has an FID curve to draw.
    metrics = (
        "callbacks=metrics",
        "callbacks.metrics.extractor=tiny",
        "callbacks.metrics.metrics=[fid]",
        "callbacks.metrics.num_samples=100",
        "callbacks.metrics.every_n_steps=2",
        "callbacks.metrics.batch_size=100",
        f"callbacks.metrics.cache_dir={tmp_path / 'cache'}",
    )
    train(compose_cfg("trainer.max_steps=4", *metrics))
    text, pngs = _execute(tmp_path / "run/checkpoints/last.ckpt", tmp_path, monkeypatch)
    assert "last.ckpt" in text and "DCGANGenerator" in text
    assert "truncation sweep skipped: DCGANGenerator has no truncation_psi" in text
    assert "loss/d" in text and "metrics/fid" in text  # the CSV logs were found and read
    assert len(pngs) == 4  # sample grid, interpolation strip, loss curves, FID curve


@pytest.mark.usefixtures("fashion_mnist_available")
def test_notebook_truncation_sweep_on_stylegan(compose_cfg, tmp_path, monkeypatch) -> None:
    train(compose_cfg("trainer.max_steps=2", *TINY_STYLEGAN))
    text, pngs = _execute(tmp_path / "run/checkpoints/last.ckpt", tmp_path, monkeypatch)
    assert "StyleGANGenerator" in text and "truncation sweep, one row per psi" in text
    assert "no metrics/fid in the logs" in text
    assert len(pngs) == 4  # sample grid, truncation sweep, interpolation strip, loss curves
