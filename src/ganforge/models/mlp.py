"""Vanilla fully-connected GAN (Goodfellow et al., 2014), the baseline every other family beats."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


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
    """``x [N, C, R, R] -> logits [N]`` through LeakyReLU MLP layers."""

    def __init__(
        self,
        resolution: int = 28,
        channels: int = 1,
        hidden: Sequence[int] = (1024, 512, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.resolution, self.channels = resolution, channels
        layers: list[nn.Module] = [nn.Flatten()]
        width = channels * resolution * resolution
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)

    @property
    def num_inputs(self) -> int:
        return self.channels * math.prod((self.resolution, self.resolution))
