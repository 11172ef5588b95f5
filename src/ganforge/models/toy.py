"""Networks for 2-D points, as in PacGAN's synthetic experiments (Lin et al., 2018, Table 1).

G: 2-d Gaussian noise -> 4 x [400 FC + batch norm + ReLU] -> linear 2-d output (no tanh: the data
spans [-4, 4]). D: 3 maxout layers of 200 units x 5 pieces -> linear logit; its input width is
``2 * pack`` for PacGAN (``ganforge.tasks.noise.pack_samples`` concatenates packed points).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.layers import MinibatchDiscrimination


def _normal_init(module: nn.Module, std: float | None) -> None:
    """PacGAN's init: N(0, std) weights, zero biases (``None`` keeps PyTorch's default)."""
    if std is None:
        return
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Maxout(nn.Module):
    """``[N, A] -> [N, units]``: the largest of ``pieces`` linear maps per unit (Goodfellow et al., 2013)."""

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.units, self.pieces).amax(-1)


class ToyGenerator(nn.Module):
    """``z [N, z_dim] -> points [N, out_features]`` through ReLU layers with batch norm."""

    def __init__(
        self,
        z_dim: int = 2,
        out_features: int = 2,
        hidden: Sequence[int] = (400, 400, 400, 400),
        init_std: float | None = 0.02,
    ) -> None:
        super().__init__()
        self.z_dim, self.out_features = z_dim, out_features
        layers: list[nn.Module] = []
        width = z_dim
        for h in hidden:
            layers += [nn.Linear(width, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        _normal_init(self, init_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """``points [N, in_features] -> logits [N]`` through maxout layers (no batch norm).

    ``minibatch_discrimination`` > 0 adds that many kernels (Salimans et al., 2016) before the output.
    """

    def __init__(
        self,
        in_features: int = 2,
        hidden: Sequence[int] = (200, 200, 200),
        pieces: int = 5,
        init_std: float | None = 0.02,
        minibatch_discrimination: int = 0,
        minibatch_kernel_dim: int = 5,
    ) -> None:
        super().__init__()
        if pieces < 1 or minibatch_discrimination < 0:
            raise ConfigError(
                f"pieces={pieces} must be >= 1 and minibatch_discrimination={minibatch_discrimination} >= 0"
            )
        self.in_features = in_features
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers.append(Maxout(width, h, pieces))
            width = h
        _normal_init(nn.Sequential(*layers), init_std)
        if minibatch_discrimination:
            layers.append(MinibatchDiscrimination(width, minibatch_discrimination, minibatch_kernel_dim))
            width += minibatch_discrimination
        head = nn.Linear(width, 1)
        _normal_init(head, init_std)
        self.net = nn.Sequential(*layers, head)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ConfigError(
                f"the discriminator takes points [N, {self.in_features}] but got {tuple(x.shape)}; "
                "its in_features must be 2 * model.pack (the default ${mul:2,${model.pack}} does this)"
            )
        return self.net(x).squeeze(1)
