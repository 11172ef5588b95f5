"""Differentiable augmentation applied to everything the discriminator sees (real and fake).

The module calls ``augment(x)`` before every D forward and ``augment.update(real_logits)`` after each
D update, so adaptive schemes (ADA) can steer their probability ``p`` from D's overfitting signal.
"""

from __future__ import annotations

import torch
from torch import nn


class Augment(nn.Module):
    """Base class: identity with probability ``p`` = 0; subclasses override ``forward``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))  # saved in checkpoints (exact resume)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def update(self, real_logits: torch.Tensor) -> None:
        """Called after each D update with D's logits on (augmented) real data."""
