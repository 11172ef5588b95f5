"""Float32 math modes on CUDA: TF32 tensor cores for training, exact IEEE fp32 for metrics.

Training tolerates TF32's 10-bit mantissa and runs several times faster on Ampere and later GPUs;
feature extraction for FID does not (published numbers were computed in full fp32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def _fp32_switches(tf32: bool) -> tuple[tuple[Any, ...], str, Any]:
    """(objects, attribute, value) that select TF32 or IEEE fp32 for convolutions and matmuls."""
    cudnn, mm = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(getattr(cudnn, "conv", None), "fp32_precision"):  # torch >= 2.9; do not mix the two APIs
        return (cudnn.conv, mm), "fp32_precision", "tf32" if tf32 else "ieee"
    return (cudnn, mm), "allow_tf32", tf32


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 for float32 convolutions and matmuls on CUDA for the rest of the process."""
    owners, attr, value = _fp32_switches(enabled)
    for owner in owners:
        setattr(owner, attr, value)


@contextlib.contextmanager
def exact_fp32(device: torch.device) -> Iterator[None]:
    """Full-fp32 convolutions and matmuls on CUDA (no TF32), as the reference numbers were computed."""
    if device.type != "cuda":
        yield
        return
    owners, attr, value = _fp32_switches(False)
    before = [getattr(o, attr) for o in owners]
    for o in owners:
        setattr(o, attr, value)
    try:
        yield
    finally:
        for o, b in zip(owners, before, strict=True):
            setattr(o, attr, b)
