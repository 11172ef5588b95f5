"""Layers with an equalised learning rate (Karras et al., 2018), shared by ProGAN and StyleGAN.

Weights are drawn from N(0, 1) and scaled at run time by He's constant ``1 / sqrt(fan_in)`` (the
``sqrt(2)`` of leaky ReLU is applied after the activation): every layer then learns at the same speed
under Adam, whatever its fan-in, which is what lets the networks grow without retuning.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def channel_widths(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels per resolution ``4 .. resolution``: ``min(channel_base // r, channel_max)``."""
    return {2**i: min(channel_base // 2**i, channel_max) for i in range(2, int(math.log2(resolution)) + 1)}


def lrelu(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Leaky ReLU (0.2) scaled by ``sqrt(2)`` so unit-variance inputs stay roughly unit variance."""
    return F.leaky_relu(x, 0.2) * (math.sqrt(2) * gain)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """Fully-connected layer with equalised learning rate (weights ~ N(0, 1), scaled at run time).

    ``lr_mul < 1`` slows the layer down (0.01 in the mapping network) without changing its output at init.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain, self.lr_mul, self.activation = lr_mul / math.sqrt(in_features), lr_mul, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """'Same' convolution with equalised learning rate; ``down`` halves the resolution first.

    Down-sampling is a 2x2 average pool before the convolution (the original blurs with a FIR filter
    and uses a stride-2 convolution; both see a 6x6 input window for a 3x3 kernel).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: bool = True,
        down: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.activation, self.down = activation, down

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        if self.down:
            x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)
        return lrelu(x, gain) if self.activation else x * gain
