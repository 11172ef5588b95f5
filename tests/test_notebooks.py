"""Notebooks execute top to bottom on a checkpoint made here."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from ganforge.train import train

from .conftest import REPO_ROOT


@pytest.mark.usefixtures("fashion_mnist_available")
def test_explore_checkpoint_notebook_runs(compose_cfg, tmp_path, monkeypatch) -> None:
    train(compose_cfg("trainer.max_steps=2"))
    monkeypatch.setenv("GANFORGE_CKPT", str(tmp_path / "run/checkpoints/last.ckpt"))
    nb = nbformat.read(REPO_ROOT / "notebooks/01_explore_checkpoint.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=dict(os.environ))
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "last.ckpt" in text and "DCGANGenerator" in text
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 2  # sample grid and interpolation strip
