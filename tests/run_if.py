"""``RunIf``: skip a test unless the machine has what it needs (as lightning-hydra-template's helper).

GPU tests also get the ``gpu`` marker, so that a GPU machine can run just them with ``pytest -m gpu``
(``scripts/device_checks.sh speed`` does, first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
import torch

T = TypeVar("T")


def RunIf(min_gpus: int = 0, bf16: bool = False) -> Callable[[T], T]:
    """``@RunIf(min_gpus=1)``: skipped, with the reason, where fewer CUDA devices are visible."""
    missing = []
    if torch.cuda.device_count() < min_gpus:
        missing.append(f"{min_gpus} CUDA GPU(s), found {torch.cuda.device_count()}")
    if bf16 and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        missing.append("a GPU with bfloat16")

    def mark(test: T) -> T:
        test = pytest.mark.skipif(bool(missing), reason="needs " + " and ".join(missing))(test)
        return pytest.mark.gpu(test) if (min_gpus or bf16) else test

    return mark
