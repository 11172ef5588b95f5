"""Vanilla fully-connected GAN (Goodfellow et al., 2014), the baseline every other family beats."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.layers import MinibatchDiscrimination


class MLPGenerator(nn.Module):
    """``z [N, z_dim] -> x [N, C, R, R]`` through ReLU MLP layers with batch norm and a tanh output."""

    def __init__(
        self,
        z_dim: int = 64,
        resolution: int = 28,
        channels: int = 1,
        hidden: Sequence[int] = (256, 512, 1024),
    ) -> None:
        super().__init__()
        self.z_dim, self.resolution, self.channels = z_dim, resolution, channels
        layers: list[nn.Module] = []
        width = z_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, channels * resolution * resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, self.channels, self.resolution, self.resolution)


class MLPDiscriminator(nn.Module):
    """``x [N, C, R, R] -> logits [N]`` through LeakyReLU MLP layers.

    ``minibatch_discrimination`` > 0 adds that many minibatch-discrimination kernels (Salimans et al.,
    2016; dimension ``minibatch_kernel_dim``) before the output layer, against mode collapse.
    """

    def __init__(
        self,
        resolution: int = 28,
        channels: int = 1,
        hidden: Sequence[int] = (1024, 512, 256),
        dropout: float = 0.0,
        minibatch_discrimination: int = 0,
        minibatch_kernel_dim: int = 5,
    ) -> None:
        super().__init__()
        if minibatch_discrimination < 0:
            raise ConfigError(
                f"minibatch_discrimination={minibatch_discrimination} must be >= 0 (0 = off, else kernels)"
            )
        self.resolution, self.channels = resolution, channels
        layers: list[nn.Module] = [nn.Flatten()]
        width = channels * resolution * resolution
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        if minibatch_discrimination:
            layers.append(MinibatchDiscrimination(width, minibatch_discrimination, minibatch_kernel_dim))
            width += minibatch_discrimination
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)

    @property
    def num_inputs(self) -> int:
        return self.channels * math.prod((self.resolution, self.resolution))
