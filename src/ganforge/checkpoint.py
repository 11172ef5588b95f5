"""Reading ganforge checkpoints outside the trainer (notebooks, evaluation, resume checks)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from ganforge.errors import ConfigError, GanforgeError


class CheckpointError(GanforgeError):
    """A checkpoint that is missing, unreadable or not a ganforge checkpoint."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass an existing file as ckpt_path=...")
    if not zipfile.is_zipfile(path):
        # torch.save writes zip archives; anything else would reach the unpickler and fail there with
        # a message about pickle internals ("unpickling stack underflow", "Memo value not found")
        raise CheckpointError(
            f"checkpoint {path} is not a PyTorch checkpoint: not a zip archive (a truncated or corrupt "
            "file, or another kind of file). Pass a .ckpt file from a run's checkpoints/ folder"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # any failure to unpickle: the file is damaged, whatever the library says
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); it is truncated or corrupt. "
            "Use an earlier checkpoint from the same checkpoints/ folder"
        ) from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "ganforge" not in ckpt:
        raise CheckpointError(
            f"{path} is not a ganforge training checkpoint (no 'state_dict'/'ganforge' keys)"
        )
    return ckpt


def check_fits(path: str | Path, ckpt: dict[str, Any], model: torch.nn.Module, requested: Any) -> None:
    """Fail before training when the checkpoint's weights do not fit ``model`` (another model or size).

    ``requested``: this command's resolved run config (a mapping), compared with the checkpoint's to say
    which model options differ.
    """
    saved, current = ckpt["state_dict"], model.state_dict()
    missing = [k for k in current if k not in saved]
    unexpected = [k for k in saved if k not in current]
    reshaped = [
        k
        for k in current
        if k in saved and torch.is_tensor(current[k]) and getattr(saved[k], "shape", None) != current[k].shape
    ]
    if not (missing or unexpected or reshaped):
        return
    problems = []
    if reshaped:
        k = reshaped[0]
        problems.append(
            f"{len(reshaped)} tensor(s) of other shapes (e.g. {k}: {list(saved[k].shape)} in the "
            f"checkpoint, {list(current[k].shape)} here)"
        )
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing from it (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} tensor(s) this model lacks (e.g. {unexpected[0]})")
    stored = (ckpt.get("ganforge") or {}).get("config") or {}
    differences = config_differences(stored.get("model") or {}, dict(requested.get("model") or {}), "model")
    shown = "; ".join(f"{k}: {a!r} in the checkpoint, {b!r} here" for k, a, b in differences[:6])
    if len(differences) > 6:
        shown += f"; and {len(differences) - 6} more"
    record = Path(path).resolve().parent.parent / "config.yaml"
    where = f" ({record})" if record.is_file() else ""
    raise CheckpointError(
        f"checkpoint {path} holds another model than this command builds: {', '.join(problems)}. "
        + (f"Model options that differ: {shown}. " if shown else "")
        + f"Resume with the model options the checkpoint was trained with{where}, "
        "or start a new run without ckpt_path"
    )


def config_differences(a: Any, b: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for every leaf where two nested configs differ; a node
    whose ``_target_`` differs is one difference (its other keys belong to another class)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.get("_target_") != b.get("_target_"):
            return [(f"{prefix}._target_", a.get("_target_"), b.get("_target_"))]
        out = []
        for key in sorted(a.keys() | b.keys(), key=str):
            out += config_differences(a.get(key), b.get(key), f"{prefix}.{key}")
        return out
    return [] if a == b else [(prefix, a, b)]


def run_config(ckpt: dict[str, Any]) -> DictConfig:
    """The resolved Hydra config the checkpoint was trained with."""
    cfg = ckpt["ganforge"].get("config")
    if cfg is None:
        raise CheckpointError(
            "checkpoint has no stored run config; it was not written by ganforge's train.py"
        )
    return OmegaConf.create(cfg)


def generator_from_checkpoint(
    ckpt: dict[str, Any], ema: bool = True, direction: str | None = None
) -> torch.nn.Module:
    """The (EMA) generator side of a loaded checkpoint, rebuilt from its run config, in eval mode.

    A family whose G side holds several networks says how to build it (its class's ``generator_side``;
    CycleGAN: ``nn.ModuleDict`` ``{"AB": G_AB, "BA": G_BA}``); ``direction`` (``"AtoB"`` | ``"BtoA"``) picks
    one of CycleGAN's two. Other checkpoints have one generator, which is ``AtoB``.
    """
    model_cfg = run_config(ckpt).model
    build = getattr(_family(model_cfg), "generator_side", None)
    generator = build(model_cfg) if build is not None else hydra.utils.instantiate(model_cfg.generator)
    prefix = "G_ema." if ema else "G."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    generator.load_state_dict(state)
    generator = generator.eval().requires_grad_(False)
    if direction is None:
        return generator
    directions = {"AtoB": "AB", "BtoA": "BA"}
    if direction not in directions:
        raise ConfigError(f"direction={direction} is not one of AtoB, BtoA")
    if isinstance(generator, torch.nn.ModuleDict):
        return generator[directions[direction]]
    if direction == "BtoA":
        raise ConfigError(
            "direction=BtoA: only unpaired (CycleGAN) checkpoints have a BtoA generator; this one has one "
            f"generator ({type(generator).__name__}): use direction=AtoB"
        )
    return generator


def _family(model_cfg: Any) -> type | None:
    """The task-family class a run config's ``model`` node builds (``None`` when it cannot be imported)."""
    target = model_cfg.get("_target_") if hasattr(model_cfg, "get") else None
    if not target:
        return None
    try:
        return hydra.utils.get_class(target)
    except Exception:  # an old or foreign checkpoint: its generator config is all there is
        return None


def load_generator(path: str | Path, ema: bool = True) -> tuple[torch.nn.Module, DictConfig]:
    """Rebuild the generator from a checkpoint file; returns ``(G in eval mode, run config)``."""
    ckpt = load_checkpoint(path)
    return generator_from_checkpoint(ckpt, ema), run_config(ckpt)


def init_generator_from(generator: torch.nn.Module, path: str | Path) -> None:
    """Start ``generator`` from the weights in ``path`` (``model.init_generator``): a ganforge checkpoint
    (its EMA generator) or a file holding the generator's own ``state_dict``. Fails naming the file and
    the first mismatched tensors when the weights belong to another network or size."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"model.init_generator={path} does not exist; point it at a checkpoint of a PSNR-trained run "
            "(e.g. outputs/train/runs/<date>/checkpoints/last.ckpt)"
        )
    if zipfile.is_zipfile(path):
        try:
            raw = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # damaged file, whatever the unpickler says
            raise CheckpointError(
                f"model.init_generator={path} is unreadable ({type(e).__name__}: {e})"
            ) from e
    else:
        raw = load_checkpoint(path)  # raises its own clear error
    if isinstance(raw, dict) and "state_dict" in raw:
        prefix = "G_ema."
        state = {k[len(prefix) :]: v for k, v in raw["state_dict"].items() if k.startswith(prefix)}
    elif isinstance(raw, dict) and all(isinstance(v, torch.Tensor) for v in raw.values()):
        state = raw
    else:
        state = {}
    if not state:
        raise CheckpointError(
            f"model.init_generator={path} holds no generator weights: expected a ganforge .ckpt or a "
            "file saved with torch.save(generator.state_dict(), path)"
        )
    current = generator.state_dict()
    missing = [k for k in current if k not in state]
    reshaped = [k for k in current if k in state and state[k].shape != current[k].shape]
    unexpected = [k for k in state if k not in current]
    if missing or reshaped or unexpected:
        what = []
        if reshaped:
            k = reshaped[0]
            what.append(f"{k} is {list(state[k].shape)} there and {list(current[k].shape)} here")
        if missing:
            what.append(f"{len(missing)} tensor(s) missing (e.g. {missing[0]})")
        if unexpected:
            what.append(f"{len(unexpected)} unknown tensor(s) (e.g. {unexpected[0]})")
        raise CheckpointError(
            f"model.init_generator={path} holds another generator than model.generator builds: "
            f"{'; '.join(what)}. Use the same generator options (scale, num_feat, num_block, ...) as the run "
            "that made it"
        )
    generator.load_state_dict(state)
