"""SNGAN ResNets (Miyato et al., 2018) for 32, 64 and 128 px, optionally class-conditional.

G: linear to ``4x4``, residual up-blocks (BN-ReLU-up-conv-BN-ReLU-conv), BN-ReLU-conv-tanh. D: residual
down-blocks with spectral normalisation on every layer, ReLU, global sum pooling, linear. With
``num_classes > 0`` G's batch norms become class-conditional and D adds the projection term
``<embed(y), phi(x)>`` (Miyato & Koyama, 2018). The blocks are shared with BigGAN (``biggan.py``).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge.errors import ConfigError

# Width multipliers of ``base_channels``: G's 4x4 input then each up-block's output; D's (width,
# downsample) per block. CIFAR: G 256 wide, D 128 wide at base 64; 64/128 px: the ImageNet networks.
G_PLANS = {32: (4, 4, 4, 4), 64: (16, 8, 4, 2, 1), 128: (16, 16, 8, 4, 2, 1)}
D_PLANS = {
    32: ((2, True), (2, True), (2, False), (2, False)),
    64: ((1, True), (2, True), (4, True), (8, True), (16, True)),
    128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
}


def check_resolution(resolution: int, model: str) -> None:
    if resolution not in G_PLANS:
        hint = " (the default Fashion-MNIST is 28 px)" if resolution == 28 else ""
        raise ConfigError(
            f"{model} makes 32, 64 or 128 px images, not {resolution}{hint}: set data.resolution=32 "
            "(or 64, 128; the datamodule resizes)"
        )


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Spectral normalisation (one power iteration per forward), applied after initialisation."""
    return spectral_norm(module) if enabled else module


def conv(c_in: int, c_out: int, k: int, use_sn: bool, gain: float = 1.0) -> nn.Module:
    """Same-size ``k x k`` convolution, Xavier-initialised as in SNGAN (gain sqrt(2) inside blocks)."""
    layer = nn.Conv2d(c_in, c_out, k, 1, k // 2)
    nn.init.xavier_uniform_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return sn(layer, use_sn)


def linear(d_in: int, d_out: int, use_sn: bool, bias: bool = True) -> nn.Module:
    layer = nn.Linear(d_in, d_out, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return sn(layer, use_sn)


class ClassBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up per class (conditional BN); plain BN without classes."""

    def __init__(self, channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.bn(x)
        if not self.num_classes:
            return h
        return h * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


Norm = Callable[[int], nn.Module]  # channels -> module called as norm(x, condition)


class GBlock(nn.Module):
    """``[N, c_in, H, W] -> [N, c_out, 2H, 2W]``: norm-ReLU-up-conv-norm-ReLU-conv plus up-conv1x1 skip."""

    def __init__(self, c_in: int, c_out: int, norm: Norm, use_sn: bool = False) -> None:
        super().__init__()
        self.norm1, self.norm2 = norm(c_in), norm(c_out)
        self.conv1 = conv(c_in, c_out, 3, use_sn, math.sqrt(2))
        self.conv2 = conv(c_out, c_out, 3, use_sn, math.sqrt(2))
        self.skip = conv(c_in, c_out, 1, use_sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, cond)), scale_factor=2)
        h = self.conv2(F.relu(self.norm2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """``[N, c_in, H, W] -> [N, c_out, H/2 or H, ...]``: (ReLU)-conv-ReLU-conv-(pool) plus 1x1 skip.

    The first block of D (``preactivation=False``) skips the leading ReLU, which would clip the image,
    and pools before its skip convolution (SNGAN's "optimized" block).
    """

    def __init__(self, c_in: int, c_out: int, down: bool, preactivation: bool = True) -> None:
        super().__init__()
        self.down, self.preactivation = down, preactivation
        self.conv1 = conv(c_in, c_out, 3, True, math.sqrt(2))
        self.conv2 = conv(c_out, c_out, 3, True, math.sqrt(2))
        self.skip = conv(c_in, c_out, 1, True) if (c_in != c_out or down) else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.skip is None:
            return h + x
        s = self._pool(self.skip(x)) if self.preactivation else self.skip(self._pool(x))
        return h + s


class ProjectionHead(nn.Module):
    """``features [N, C, H, W] -> logits [N]``: ReLU, sum pool to ``phi``, ``psi(phi) + <embed(y), phi>``."""

    def __init__(self, channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.psi = linear(channels, 1, True)
        self.embed: nn.Module | None = None
        if num_classes:
            embed = nn.Embedding(num_classes, channels)
            nn.init.xavier_uniform_(embed.weight)
            self.embed = spectral_norm(embed)

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        phi = F.relu(h).sum((2, 3))
        out = self.psi(phi).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("a class-conditional discriminator needs labels [N]")
            out = out + (self.embed(labels) * phi).sum(1)
        return out


class SNGANGenerator(nn.Module):
    """``z [N, z_dim] -> linear [N, W0, 4, 4] -> up-blocks -> BN-ReLU-conv-tanh [N, C, R, R]``."""

    def __init__(
        self,
        z_dim: int = 128,
        resolution: int = 32,
        channels: int = 3,
        num_classes: int = 0,
        base_channels: int = 64,
    ) -> None:
        super().__init__()
        check_resolution(resolution, "SNGAN")
        self.z_dim, self.resolution, self.channels = z_dim, resolution, channels
        self.num_classes = int(num_classes or 0)
        widths = [m * base_channels for m in G_PLANS[resolution]]
        self.linear = linear(z_dim, widths[0] * 16, False)
        norm = functools.partial(ClassBatchNorm2d, num_classes=self.num_classes)
        self.blocks = nn.ModuleList(GBlock(a, b, norm) for a, b in itertools.pairwise(widths))
        self.out = nn.Sequential(
            nn.BatchNorm2d(widths[-1]), nn.ReLU(), conv(widths[-1], channels, 3, False), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and labels is None:
            raise ValueError("a class-conditional SNGAN generator needs labels [N]")
        h = self.linear(z).view(len(z), -1, 4, 4)
        for block in self.blocks:
            h = block(h, labels)
        return self.out(h)


class SNGANDiscriminator(nn.Module):
    """``x [N, C, R, R] -> spectrally normalised down-blocks -> ReLU, sum pool -> logits [N]``."""

    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        num_classes: int = 0,
        base_channels: int = 64,
    ) -> None:
        super().__init__()
        check_resolution(resolution, "SNGAN")
        self.resolution, self.channels = resolution, channels
        self.num_classes = int(num_classes or 0)
        blocks, c_in = [], channels
        for i, (mult, down) in enumerate(D_PLANS[resolution]):
            blocks.append(DBlock(c_in, mult * base_channels, down, preactivation=i > 0))
            c_in = mult * base_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = ProjectionHead(c_in, self.num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.blocks(x), labels)
