"""Regularisers that compose with any loss: R1, R2, gradient penalty (and G-side ones such as path length).

Each runs every ``interval`` steps ("lazy regularisation", Karras et al. 2020) with its weight
multiplied by ``interval`` so the average strength does not depend on how often it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.losses.penalties import gradient_penalty

Critic = Callable[[torch.Tensor], torch.Tensor]


class Regularizer(nn.Module):
    """Base class. ``target`` says which network's loss the term joins (``"d"`` or ``"g"``)."""

    target = "d"

    def __init__(
        self,
        weight: float,
        interval: int = 1,
        final_weight: float | None = None,
        decay_steps: int | None = None,
    ) -> None:
        super().__init__()
        if weight < 0 or (final_weight is not None and final_weight < 0):
            raise ConfigError(f"regularizer weight={weight}, final_weight={final_weight} must be >= 0")
        if interval < 1:
            raise ConfigError(f"regularizer interval={interval} must be >= 1")
        if (final_weight is None) != (decay_steps is None) or (decay_steps is not None and decay_steps < 1):
            raise ConfigError(
                "regularizer decay: give both final_weight and decay_steps (>= 1), or neither "
                f"(got final_weight={final_weight}, decay_steps={decay_steps})"
            )
        self.weight = weight
        self.interval = interval
        self.final_weight = final_weight
        self.decay_steps = decay_steps

    def weight_at(self, count: int) -> float:
        """The weight at step ``count``: constant, or cosine from ``weight`` to ``final_weight``.

        A strong penalty early keeps D smooth while G spreads over the modes; decaying it lets D
        resolve fine detail later (R3GAN, Huang et al. 2024, decays its R1/R2 gamma this way).
        """
        if self.final_weight is None or self.decay_steps is None:
            return self.weight
        t = min(count / self.decay_steps, 1.0)
        return self.final_weight + (self.weight - self.final_weight) * 0.5 * (1.0 + math.cos(math.pi * t))

    def due(self, count: int) -> bool:
        return self.weight_at(count) > 0 and count % self.interval == 0

    def scale(self, count: int = 0) -> float:
        return self.weight_at(count) * self.interval

    def d_penalty(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_penalty(self, module: Any, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


def grad_norm_sq(critic: Critic, x: torch.Tensor) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` with a graph back to D's parameters."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


class R1(Regularizer):
    """Zero-centred gradient penalty on real data (Mescheder et al., 2018): ``weight * E||dD(x)/dx||^2``.

    StyleGAN's ``gamma`` corresponds to ``weight = gamma / 2``; its default lazy interval is 16.
    """

    def d_penalty(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return grad_norm_sq(critic, real)


class R2(Regularizer):
    """Zero-centred gradient penalty on generated data (Mescheder et al., 2018)."""

    def d_penalty(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return grad_norm_sq(critic, fake)


class GradientPenalty(Regularizer):
    """WGAN-GP's one-centred penalty on real/fake interpolates, usable with any loss."""

    def __init__(self, weight: float = 10.0, interval: int = 1, target_norm: float = 1.0) -> None:
        super().__init__(weight, interval)
        self.target_norm = target_norm

    def d_penalty(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return gradient_penalty(critic, real, fake, self.target_norm)
