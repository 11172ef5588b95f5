"""Gradient-based discriminator penalties."""

from __future__ import annotations

from collections.abc import Callable

import torch


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    target_norm: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al., 2017): ``E[(||grad_x D(x_hat)||_2 - target)^2]``.

    ``x_hat`` are random points on straight lines between paired real and fake samples; the penalty
    keeps the critic close to 1-Lipschitz along them. Returns a scalar with a graph to the critic.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(real.detach(), fake.detach(), alpha).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return (norm - target_norm).square().mean()
