"""Capture and restore every random number generator a run uses (torch CPU/CUDA, numpy, python)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def get_rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Whatever runs inside (evaluation, sampling) leaves the training randomness exactly as it was."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
