"""Content losses: how far a generated image is from its ground truth (paired tasks: Pix2Pix, SR).

Each loss carries its own weight (BasicSR's convention), so a recipe is a dict of weighted terms, each
logged as ``loss/g_<name>``: ``{l1: 100}`` is Pix2Pix, ``{l1: 0.01, perceptual: 1}`` ESRGAN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ganforge.errors import ConfigError

#: per-pixel penalty of the difference ``d`` (``eps``: Charbonnier's smoothing)
PIXEL_PENALTIES: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "l1": lambda d, eps: d.abs(),
    "mse": lambda d, eps: d.square(),
    "charbonnier": lambda d, eps: torch.sqrt(d.square() + eps**2),
}


class PixelLoss(nn.Module):
    """``weight * mean(rho(output - target))`` over all pixels of images in ``[-1, 1]``.

    ``kind``: ``l1`` (Pix2Pix: sharper than L2, which averages plausible answers into blur), ``mse``
    (SRResNet's PSNR objective) or ``charbonnier`` (``sqrt(d^2 + eps^2)``, a smooth L1).

    Note the ``[-1, 1]`` scale: an L1 of 0.1 here is 0.05 on the ``[0, 1]`` scale that
    ``ganforge.metrics.image_quality.l1`` reports.
    """

    def __init__(self, weight: float = 1.0, kind: str = "l1", eps: float = 1e-3) -> None:
        super().__init__()
        if kind not in PIXEL_PENALTIES:
            raise ConfigError(
                f"pixel loss kind={kind!r} is unknown; choose from {', '.join(PIXEL_PENALTIES)}"
            )
        if weight < 0:
            raise ConfigError(f"pixel loss weight={weight} must be >= 0")
        self.weight, self.kind, self.eps = float(weight), kind, eps

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * PIXEL_PENALTIES[self.kind](output - target, self.eps).mean()

    def extra_repr(self) -> str:
        return f"kind={self.kind}, weight={self.weight}"
