"""SRResNet (Ledig et al., 2017; BasicSR's MSRResNet) and the VGG-style discriminator of SRGAN/ESRGAN.

Super-resolution generators map a low-resolution image ``[N, C_in, h, w]`` in ``[-1, 1]`` to
``[N, C_out, scale*h, scale*w]`` in the same space, unsquashed: a tanh would make the last few percent
of the range hard to reach and slow the pixel (L1/L2) loss near saturated colours, so the networks
output unbounded values and the caller clamps for saving and scoring. They expose ``in_channels``,
``out_channels`` and ``scale``. Sizes and init follow BasicSR (``MSRResNet``, ``VGGStyleDiscriminator``),
so parameter counts and behaviour at init can be compared with published models.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError

SCALES = (2, 3, 4, 8)


def check_scale(scale: int, model: str) -> None:
    if scale not in SCALES:
        raise ConfigError(
            f"{model} upsamples by {', '.join(map(str, SCALES))}, not {scale}: set model.scale "
            "(and data.scale) to one of them"
        )


def upsample_factors(scale: int) -> list[int]:
    """The single-step factors of an upsampler: ``[3]`` for x3, ``[2] * log2(scale)`` otherwise."""
    return [3] if scale == 3 else [2] * int(math.log2(scale))


def scaled_kaiming_(modules: Iterable[nn.Module], scale: float = 1.0) -> None:
    """BasicSR's ``default_init_weights``: Kaiming-normal (fan-in, ReLU gain) conv/linear weights times
    ``scale``, zero biases, batch norms at weight 1 and bias 0.

    ``scale=0.1`` on residual branches: each branch then starts near zero, so a deep stack of blocks
    without batch norm starts close to the identity and the sum of the branches does not blow up the
    activations (Wang et al., ESRGAN, Sec. 3.2; the same idea as Fixup or zero-init residuals).
    """
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                m.weight.data.mul_(scale)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def conv3x3(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)


class ResidualBlock(nn.Module):
    """``x + conv(ReLU(conv(x)))`` (BasicSR's ``ResidualBlockNoBN``), or with ``batch_norm``
    ``x + BN(conv(ReLU(BN(conv(x)))))`` (SRResNet's block, with ReLU for its PReLU). Shape-preserving.

    The convs are Kaiming init times 0.1. With batch norm the factor is undone in training mode (BN
    renormalises the branch); there BN is what keeps the sums in range, as in Ledig et al.
    """

    def __init__(self, channels: int, batch_norm: bool = False) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(channels)) if batch_norm else nn.Identity
        self.branch = nn.Sequential(
            conv3x3(channels, channels, bias=not batch_norm),
            norm(),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels, bias=not batch_norm),
            norm(),
        )
        scaled_kaiming_([self.branch], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class SRResNet(nn.Module):
    """``[N, C_in, h, w]`` -> ``[N, C_out, s*h, s*w]``: conv3x3 + LeakyReLU(0.1) ``[N, F, h, w]`` ->
    ``num_block`` residual blocks -> pixel-shuffle upsampler ``[N, F, s*h, s*w]`` (per x2 or x3 step:
    conv to ``F * r^2`` channels, PixelShuffle(r), LeakyReLU(0.1)) -> conv3x3 + LeakyReLU(0.1) ->
    conv3x3 to ``C_out``; with ``global_residual`` plus the bilinear upsampling of the input.

    The defaults (no batch norm, global residual) are BasicSR's ``MSRResNet`` (1,517,571 parameters at
    x4): the network only learns the detail bilinear upsampling misses, and since every conv starts at
    0.1 x Kaiming an untrained network is within a small fraction of that upsampling. ``batch_norm=True``
    puts BN in the blocks as Ledig et al.'s SRResNet, but keeps the rest of MSRResNet's layout
    (3x3 head rather than 9x9, LeakyReLU(0.1) rather than PReLU, no long skip around the blocks).
    Works at any ``h, w``; x8 is three x2 steps (BasicSR stops at x4).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 16,
        batch_norm: bool = False,
        global_residual: bool = True,
    ) -> None:
        super().__init__()
        check_scale(scale, "SRResNet")
        if num_block < 0:
            raise ConfigError(f"num_block={num_block} must be >= 0 (16 in SRResNet)")
        if global_residual and in_channels != out_channels:
            raise ConfigError(
                f"global_residual adds the upsampled input to the output, so it needs in_channels == "
                f"out_channels, got {in_channels} and {out_channels}: set "
                "model.generator.global_residual=false"
            )
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.global_residual = global_residual
        lrelu = functools.partial(nn.LeakyReLU, 0.1, inplace=True)
        self.head = nn.Sequential(conv3x3(in_channels, num_feat), lrelu())
        self.body = nn.Sequential(*(ResidualBlock(num_feat, batch_norm) for _ in range(num_block)))
        up: list[nn.Module] = []
        for r in upsample_factors(scale):
            up += [conv3x3(num_feat, num_feat * r * r), nn.PixelShuffle(r), lrelu()]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Sequential(conv3x3(num_feat, num_feat), lrelu(), conv3x3(num_feat, out_channels))
        scaled_kaiming_([self.head, self.upsample, self.tail], 0.1)  # the blocks init themselves

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.head(x))  # [N, F, h, w]
        out = self.tail(self.upsample(out))  # [N, C_out, s*h, s*w]
        if self.global_residual:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out


class VGGStyleDiscriminator(nn.Module):
    """SRGAN/ESRGAN's D: ``[N, C, S, S]`` -> logits ``[N]`` for a fixed patch size ``S = input_size``.

    Five stages, each a 3x3 stride-1 conv and a 4x4 stride-2 conv, widths ``(1, 2, 4, 8, 8) x
    base_channels``; BN after every conv but the first, LeakyReLU(0.2) after each. The ``[N, 8B, S/32,
    S/32]`` map is flattened into Linear(-> 100), LeakyReLU(0.2), Linear(-> 1). The flatten ties D to one
    input size (4x4 at 128 as BasicSR's ``VGGStyleDiscriminator``, 3x3 at SRGAN's 96); at 256 BasicSR
    adds a sixth stage, here the map is 8x8 instead. Init: Kaiming (scale 1), as the ESRGAN code's D.
    """

    widths = (1, 2, 4, 8, 8)

    def __init__(self, in_channels: int = 3, base_channels: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size < 32 or input_size % 32:
            raise ConfigError(
                f"the VGG-style discriminator halves the patch 5 times and needs input_size divisible by "
                f"32, got {input_size}: use 96 or 128 (model.discriminator.input_size and data.patch_size)"
            )
        self.in_channels, self.input_size = in_channels, input_size
        layers: list[nn.Module] = []
        c_prev = in_channels
        for i, w in enumerate(self.widths):
            c = base_channels * w
            first = i == 0
            layers += [nn.Conv2d(c_prev, c, 3, 1, 1, bias=first)]
            layers += [] if first else [nn.BatchNorm2d(c)]
            layers += [nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c, c, 4, 2, 1, bias=False)]
            layers += [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]
            c_prev = c
        self.features = nn.Sequential(*layers)
        s = input_size // 32
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c_prev * s * s, 100), nn.LeakyReLU(0.2, inplace=True), nn.Linear(100, 1)
        )
        scaled_kaiming_([self], 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            h, w = x.shape[-2:]
            raise ConfigError(
                f"the VGG-style discriminator judges {self.input_size}x{self.input_size} patches only (its "
                f"linear layer is sized for them), got {h}x{w}: set data.patch_size={self.input_size} or "
                f"model.discriminator.input_size=<patch> (the patch side, a multiple of 32)"
            )
        return self.classifier(self.features(x)).squeeze(1)  # [N, 8B, S/32, S/32] -> [N]
