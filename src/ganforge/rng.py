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


def reseed_for_rank(rank: int) -> int:
    """Give this data-parallel rank its own random stream, derived from the (shared) current one.

    Every rank starts from the same seed (identical initial weights); without this they would also
    draw identical latents, so N GPUs would train on N copies of one fake batch.
    """
    seed = (int(torch.randint(2**62, ())) + rank * 1_000_003) % 2**63  # same draw on every rank
    torch.manual_seed(seed)  # CPU and every CUDA device
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return seed


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Whatever runs inside (evaluation, sampling) leaves the training randomness exactly as it was."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
