"""Float32 math modes on CUDA: TF32 tensor cores for training, exact IEEE fp32 for metrics.

Training tolerates TF32's 10-bit mantissa and runs several times faster on Ampere and later GPUs.
Feature extraction for FID runs in exact fp32 by default, as the published numbers were computed;
``precision=tf32`` on the metrics trades a small, measured FID deviation for speed
(``benchmarks/metrics_agreement.py`` reports both).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def _conv_switch(tf32: bool) -> tuple[Any, str, Any]:
    """(object, attribute, value) that selects TF32 or IEEE fp32 for cuDNN convolutions."""
    cudnn = torch.backends.cudnn
    if hasattr(getattr(cudnn, "conv", None), "fp32_precision"):  # torch >= 2.9
        return cudnn.conv, "fp32_precision", "tf32" if tf32 else "ieee"
    return cudnn, "allow_tf32", tf32


def _matmul_precision() -> str:
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:  # someone set the per-backend flags inconsistently; read CUDA's
        return "high" if torch.backends.cuda.matmul.fp32_precision == "tf32" else "highest"


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 for float32 convolutions and matmuls on CUDA for the rest of the process.

    Matmuls go through ``torch.set_float32_matmul_precision``: setting the per-backend matmul flag
    instead makes torch >= 2.9 refuse ``get_float32_matmul_precision()``, which Lightning calls when a
    CUDA run starts ("mix of the legacy and new APIs").
    """
    owner, attr, value = _conv_switch(enabled)
    setattr(owner, attr, value)
    torch.set_float32_matmul_precision("high" if enabled else "highest")


@contextlib.contextmanager
def fp32_math(device: torch.device, tf32: bool) -> Iterator[None]:
    """Float32 convolutions and matmuls on CUDA as IEEE fp32 (``tf32=False``) or TF32, then restored."""
    if device.type != "cuda":
        yield
        return
    owner, attr, _ = _conv_switch(tf32)
    conv_before, matmul_before = getattr(owner, attr), _matmul_precision()
    set_tf32(tf32)
    try:
        yield
    finally:
        setattr(owner, attr, conv_before)
        torch.set_float32_matmul_precision(matmul_before)


def exact_fp32(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """Full-fp32 convolutions and matmuls on CUDA (no TF32), as the reference numbers were computed."""
    return fp32_math(device, tf32=False)
