"""Reading ganforge checkpoints outside the trainer (notebooks, evaluation, resume checks)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from ganforge.errors import GanforgeError


class CheckpointError(GanforgeError):
    """A checkpoint that is missing, unreadable or not a ganforge checkpoint."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass an existing file as ckpt_path=...")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); it is truncated or corrupt. "
            "Use an earlier checkpoint from the same checkpoints/ folder"
        ) from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "ganforge" not in ckpt:
        raise CheckpointError(
            f"{path} is not a ganforge training checkpoint (no 'state_dict'/'ganforge' keys)"
        )
    return ckpt


def run_config(ckpt: dict[str, Any]) -> DictConfig:
    """The resolved Hydra config the checkpoint was trained with."""
    cfg = ckpt["ganforge"].get("config")
    if cfg is None:
        raise CheckpointError(
            "checkpoint has no stored run config; it was not written by ganforge's train.py"
        )
    return OmegaConf.create(cfg)


def generator_from_checkpoint(ckpt: dict[str, Any], ema: bool = True) -> torch.nn.Module:
    """The (EMA) generator of a loaded checkpoint, rebuilt from its run config, in eval mode."""
    generator = hydra.utils.instantiate(run_config(ckpt).model.generator)
    prefix = "G_ema." if ema else "G."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    generator.load_state_dict(state)
    return generator.eval().requires_grad_(False)


def load_generator(path: str | Path, ema: bool = True) -> tuple[torch.nn.Module, DictConfig]:
    """Rebuild the generator from a checkpoint file; returns ``(G in eval mode, run config)``."""
    ckpt = load_checkpoint(path)
    return generator_from_checkpoint(ckpt, ema), run_config(ckpt)
