"""ProGAN (Karras et al., 2018): G and D that grow from 4x4 to the target resolution.

Both networks hold every resolution's layers from the start and use the ones of the current *level*
(``resolution = 4 * 2**level``); while a new level fades in, its output (G) or input (D) is blended with the
previous level's by ``alpha`` (0 -> 1). ``set_growth(level, alpha)`` moves them; the training module does
it from the step (``ganforge.tasks.progressive``), and the state is kept in ``state_dict`` so a checkpoint's
generator makes the images it made when saved.

As in the official code, images keep the full resolution at every level: G's output at a lower level is
up-sampled (nearest) to the full size, and D average-pools its full-size input down to the level. Samples,
metrics and checkpoints therefore never change shape while the resolution grows.

Equalised learning rate everywhere, pixelwise feature normalisation after every G convolution, minibatch
standard deviation before D's last block, 1x1 to-RGB/from-RGB convolutions per resolution, nearest
up-sampling and 2x2 average-pool down-sampling.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.equalized import EqualConv2d, EqualLinear, channel_widths, normalize_2nd_moment
from ganforge.models.layers import MinibatchStd


def num_levels(resolution: int) -> int:
    """Levels above 4x4 up to ``resolution`` (``4 * 2**k`` px); a ``ConfigError`` for other sizes."""
    k = math.log2(resolution / 4) if resolution >= 4 else -1
    if resolution < 8 or k != int(k):
        sizes = ", ".join(str(4 * 2**i) for i in range(1, 9))
        raise ConfigError(
            f"ProGAN grows from 4x4 by doubling: the target resolution must be 4 * 2^k px ({sizes}, ...), "
            f"not {resolution}; set data.resolution to one of them (e.g. data.resolution=64)"
        )
    return int(k)


class Growing(nn.Module):
    """The growth state of a ProGAN network: the current ``level`` and fade-in ``alpha``."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.max_level = num_levels(resolution)
        self.level, self.alpha = self.max_level, 1.0  # a fully grown network unless told otherwise

    @property
    def current_resolution(self) -> int:
        return 4 * 2**self.level

    @property
    def fading(self) -> bool:
        return self.alpha < 1.0 and self.level > 0

    def set_growth(self, level: int, alpha: float = 1.0) -> None:
        if not (0 <= level <= self.max_level and 0.0 <= alpha <= 1.0):
            raise ValueError(f"level {level} must be in [0, {self.max_level}] and alpha {alpha} in [0, 1]")
        self.level, self.alpha = int(level), float(alpha)

    def get_extra_state(self) -> dict[str, Any]:
        return {"level": self.level, "alpha": self.alpha}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.set_growth(state["level"], state["alpha"])

    def extra_repr(self) -> str:
        return f"level={self.level} ({self.current_resolution} px), alpha={self.alpha:.3f}"


def upsample_nearest(x: torch.Tensor, factor: int) -> torch.Tensor:
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def at_level(images: torch.Tensor, level: int, alpha: float, max_level: int) -> torch.Tensor:
    """Full-size ``images`` as a network at ``(level, alpha)`` sees them: average-pooled to the level's
    resolution, blended with the level below while it fades in (the official code's fade of the real
    images), and up-sampled back to the full size (nearest)."""
    factor = 2 ** (max_level - level)
    x = F.avg_pool2d(images, factor) if factor > 1 else images
    if alpha < 1.0 and level > 0:
        x = torch.lerp(upsample_nearest(F.avg_pool2d(x, 2), 2), x, alpha)
    return upsample_nearest(x, factor)


def progan_widths(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels per resolution ``4 .. resolution`` (``channel_widths``); a ``ConfigError`` if one is 0."""
    widths = channel_widths(resolution, channel_base, channel_max)
    if min(widths.values()) < 1:
        raise ConfigError(f"channel_base={channel_base} leaves no channels at {resolution} px: raise it")
    return widths


class GeneratorBlock(nn.Module):
    """Doubles the resolution: nearest up-sampling, two 3x3 convolutions, each followed by pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(self.conv0(upsample_nearest(x, 2)))
        return normalize_2nd_moment(self.conv1(x))


class ProGANGenerator(Growing):
    """``z [N, z_dim] -> images [N, C, R, R]`` (linear, about ``[-1, 1]``) at the current level.

    Width at ``r`` px: ``min(channel_base / r, channel_max)`` (the paper: 8192 and 512, 512 channels up to
    32 px at 1024 px).
    """

    def __init__(
        self,
        resolution: int = 64,
        channels: int = 3,
        z_dim: int = 512,
        channel_base: int = 8192,
        channel_max: int = 512,
    ) -> None:
        super().__init__(resolution)
        self.resolution, self.channels, self.z_dim = resolution, channels, z_dim
        self.num_classes = 0
        widths = progan_widths(resolution, channel_base, channel_max)
        c4 = widths[4]
        self.c4 = c4
        self.dense = EqualLinear(z_dim, c4 * 16, activation=True)  # the 4x4 "transposed convolution"
        self.conv4 = EqualConv2d(c4, c4, 3)
        sizes = sorted(widths)
        self.blocks = nn.ModuleList(GeneratorBlock(widths[r // 2], widths[r]) for r in sizes[1:])
        self.to_rgb = nn.ModuleList(EqualConv2d(widths[r], channels, 1, activation=False) for r in sizes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(self.dense(normalize_2nd_moment(z)).view(-1, self.c4, 4, 4))
        x = normalize_2nd_moment(self.conv4(x))  # [N, C4, 4, 4]
        previous = x
        for block in self.blocks[: self.level]:
            previous, x = x, block(x)
        img = self.to_rgb[self.level](x)
        if self.fading:  # the new block's image blended with the up-sampled image of the level below
            img = torch.lerp(upsample_nearest(self.to_rgb[self.level - 1](previous), 2), img, self.alpha)
        return upsample_nearest(img, 2 ** (self.max_level - self.level))


class DiscriminatorBlock(nn.Module):
    """Halves the resolution: two 3x3 convolutions, then 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv1(self.conv0(x)), 2)


class ProGANDiscriminator(Growing):
    """``images [N, C, R, R] -> logits [N]`` at the current level (the input is pooled down to it).

    fromRGB (1x1) at the level's resolution, one block per halving down to 4x4, then minibatch std, a 3x3
    convolution and two fully-connected layers. While a level fades in, the new block's output is blended
    with the level below's fromRGB of the pooled image.
    """

    def __init__(
        self,
        resolution: int = 64,
        channels: int = 3,
        channel_base: int = 8192,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
    ) -> None:
        super().__init__(resolution)
        self.resolution, self.channels = resolution, channels
        widths = progan_widths(resolution, channel_base, channel_max)
        c4 = widths[4]
        if c4 % mbstd_num_channels:
            raise ConfigError(f"mbstd_num_channels={mbstd_num_channels} must divide the 4x4 width {c4}")
        sizes = sorted(widths)
        self.from_rgb = nn.ModuleList(EqualConv2d(channels, widths[r], 1) for r in sizes)
        # blocks[i] takes level i + 1 (resolution sizes[i + 1]) down to level i
        self.blocks = nn.ModuleList(DiscriminatorBlock(widths[r], widths[r // 2]) for r in sizes[1:])
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_num_channels)
        self.conv4 = EqualConv2d(c4 + mbstd_num_channels, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        factor = x.shape[-1] // self.current_resolution
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        h = self.from_rgb[self.level](x)
        if self.level > 0:
            h = self.blocks[self.level - 1](h)
            if self.fading:  # the level below's path on the pooled image, blended out as alpha -> 1
                h = torch.lerp(self.from_rgb[self.level - 1](F.avg_pool2d(x, 2)), h, self.alpha)
            for block in reversed(self.blocks[: self.level - 1]):
                h = block(h)
        h = self.fc(self.conv4(self.mbstd(h)).flatten(1))
        return self.out(h).squeeze(1)
