"""Exponential moving average of generator weights (Karras et al.; Yazici et al., 2019).

Averaged weights give visibly smoother samples and better FID than the raw generator, so every
sample grid and metric uses the EMA copy.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` in eval mode."""
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` for parameters; buffers (BN statistics) are copied."""
    ema_params = list(ema.parameters())
    params = [p.detach() for p in model.parameters()]
    if beta <= 0.0:
        torch._foreach_copy_(ema_params, params)
    else:
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


def ema_beta(beta: float, step: int, rampup: float | None) -> float:
    """StyleGAN2-ADA ramp-up: the EMA half-life is at most ``rampup * step`` steps.

    Early in training the average then forgets the random init quickly instead of lagging behind it.
    """
    if not rampup or beta <= 0.0:
        return beta
    halflife = math.log(0.5) / math.log(beta)
    halflife = min(halflife, max(step, 1) * rampup)
    return 0.5 ** (1.0 / halflife)
