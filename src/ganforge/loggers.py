"""Logger factories that need more than a ``_target_``."""

from __future__ import annotations

import netrc
import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger

from ganforge.errors import ConfigError


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
    credentials are configured, else offline. Runs write under ``save_dir/wandb``. ``log_model``
    (``true`` or ``all``) logs checkpoints as artifacts, offline runs included.
    """
    if mode not in ("auto", "online", "offline"):
        raise ConfigError(f"logger.wandb.mode={mode!r}: use auto, online or offline")
    offline = mode == "offline" or (mode == "auto" and not has_wandb_credentials())
    os.environ.setdefault("WANDB_SILENT", "true")
    if offline:
        os.environ["WANDB_MODE"] = "offline"
    # Lightning refuses log_model with offline=True, but an offline W&B run keeps checkpoint artifacts
    # and `wandb sync` uploads them: WANDB_MODE above already keeps this run offline.
    return WandbLogger(offline=offline and not kwargs.get("log_model"), **kwargs)
