"""DCGAN (Radford et al., 2016) at any resolution ``start * 2^k`` with ``start`` in {4, 7}.

``start = 7`` serves MNIST-like 28 px data without resizing; 32/64/128 px start from 4x4. Channel width
halves at each doubling of resolution, capped at ``max_channels``.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.layers import MinibatchStd


def _plan(resolution: int) -> tuple[int, int]:
    """Return ``(start, num_doublings)`` for a supported resolution."""
    for start in (4, 7):
        k = math.log2(resolution / start) if resolution >= start else -1
        if k >= 1 and k == int(k):
            return start, int(k)
    raise ConfigError(
        f"DCGAN cannot produce {resolution}x{resolution} images; supported resolutions are "
        "4*2^k or 7*2^k (e.g. 28, 32, 56, 64, 128, 256): set data.resolution to one of them"
    )


def _init_weights(module: nn.Module) -> None:
    """DCGAN init: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Project(nn.ConvTranspose2d):
    """The project-and-reshape layer, ``[N, z_dim] -> [N, C, s, s]``: a transposed convolution from 1x1
    to ``s x s`` (same weights, checkpoints and result), computed as one matrix product.

    Why: under torch.compile with channels_last weights, torch 2.11 on CUDA predicted the layout of
    the weight gradient of a convolution on a 1x1 input wrongly and stopped with an
    ``assert_size_stride`` error in convolution_backward. A matmul has no layout to guess.
    """

    def __init__(self, z_dim: int, channels: int, size: int) -> None:
        super().__init__(z_dim, channels, size, 1, 0, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.weight  # [z_dim, C, s, s], any memory layout
        return (z.flatten(1) @ w.reshape(w.shape[0], -1)).view(-1, *w.shape[1:])


class DCGANGenerator(nn.Module):
    """``z [N, z_dim] -> [N, C0, s, s] -> ... doublings ... -> tanh x [N, C, R, R]``."""

    def __init__(
        self,
        z_dim: int = 100,
        resolution: int = 64,
        channels: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        self.z_dim, self.resolution, self.channels = z_dim, resolution, channels
        start, k = _plan(resolution)
        widths = [min(max_channels, base_channels * 2 ** (k - 1 - i)) for i in range(k)]
        layers: list[nn.Module] = [
            Project(z_dim, widths[0], start),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """``x [N, C, R, R] -> ... strided convs ... -> [N, Ck, s, s] -> logits [N]`` (no sigmoid).

    ``minibatch_std`` > 0 appends ProGAN's minibatch standard-deviation channel (groups of that size)
    before the last convolution, so a batch of near-identical fakes is easy to tell from real data.
    """

    def __init__(
        self,
        resolution: int = 64,
        channels: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        batch_norm: bool = True,
        minibatch_std: int = 0,
    ) -> None:
        super().__init__()
        if minibatch_std < 0:
            raise ConfigError(f"minibatch_std={minibatch_std} must be >= 0 (0 = off, else the group size)")
        self.resolution, self.channels = resolution, channels
        start, k = _plan(resolution)
        widths = [min(max_channels, base_channels * 2**i) for i in range(k)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in itertools.pairwise(widths):
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
        layers.append(nn.Conv2d(widths[-1] + (1 if minibatch_std else 0), 1, start, 1, 0))
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).flatten(1).squeeze(1)
