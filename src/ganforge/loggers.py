"""Logger factories that need more than a ``_target_``."""

from __future__ import annotations

import netrc
import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger


def has_wandb_credentials() -> bool:
    """True when W&B can log in without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def wandb_logger(mode: str = "auto", **kwargs: Any) -> WandbLogger:
    """A ``WandbLogger`` that never prompts.

    ``mode``: ``online``, ``offline`` (sync later with ``wandb sync <run dir>``) or ``auto``: online when
    credentials are configured, else offline. Runs write under ``save_dir/wandb``.
    """
    if mode not in ("auto", "online", "offline"):
        raise ValueError(f"logger.wandb.mode={mode!r}: use auto, online or offline")
    offline = mode == "offline" or (mode == "auto" and not has_wandb_credentials())
    os.environ.setdefault("WANDB_SILENT", "true")
    if offline:
        os.environ["WANDB_MODE"] = "offline"
    return WandbLogger(offline=offline, **kwargs)
