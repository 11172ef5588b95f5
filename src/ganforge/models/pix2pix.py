"""Image-to-image networks of Pix2Pix (Isola et al., 2017) and CycleGAN (Zhu et al., 2017).

Generators map an image ``[N, C_in, H, W]`` in ``[-1, 1]`` to an image ``[N, C_out, H, W]`` in
``[-1, 1]``; the PatchGAN discriminator maps an image (for pix2pix, input and output concatenated on
channels) to a map of logits ``[N, 1, h, w]``, one per overlapping patch, so that D judges local texture
and the L1 term of the generator's loss takes care of the low frequencies.

Layouts, norms, biases and init follow junyanz/pytorch-CycleGAN-and-pix2pix (``unet_256``,
``resnet_9blocks``, ``basic``/``n_layers``/``pixel`` discriminators, ``normal`` init).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.errors import ConfigError

NORMS = ("batch", "instance", "none")
PADDINGS = ("reflect", "replicate", "zero")


def _use_bias(kind: str) -> bool:
    """Conv bias only without batch norm (batch norm's shift would cancel it), as the reference."""
    if kind not in NORMS:
        raise ConfigError(f"unknown norm {kind!r}: set the model's norm to one of {', '.join(NORMS)}")
    return kind != "batch"


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``"batch"`` | ``"instance"`` (no affine, no running stats: per-image statistics in train and eval,
    as the reference) | ``"none"`` (identity)."""
    _use_bias(kind)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """The reference's ``normal`` init: conv/linear weights N(0, std), batch-norm scales N(1, std),
    biases 0. Returns ``net``."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return net


def _check_dropout(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout={p} must be in [0, 1) (0 turns it off)")


def _check_divisible(x: torch.Tensor, factor: int, why: str, hint: str = "") -> None:
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ConfigError(
            f"{why} needs image sides divisible by {factor}, got {h}x{w}: resize or crop the images "
            f"(data.resolution) to a multiple of {factor}{hint}"
        )


def unet_depth(resolution: int) -> int:
    """``log2(resolution)``: the depth at which the U-Net bottleneck is 1x1 (256 -> 8, 128 -> 7)."""
    if resolution < 2 or resolution & (resolution - 1):
        raise ConfigError(
            f"a U-Net follows the resolution only for powers of two, got {resolution}: use 64, 128, 256, "
            "... or give model.generator.depth explicitly (the sides must then be divisible by 2**depth)"
        )
    return int(math.log2(resolution))


class UNetGenerator(nn.Module):
    """U-Net: ``depth`` stride-2 4x4 convs down to ``[N, C, H/2^d, W/2^d]``, then ``depth`` transposed
    convs back up, each decoder level concatenating the encoder features of the same size.

    Encoder: LeakyReLU(0.2) -> conv -> norm (no activation before the first conv, no norm on the first and
    on the bottleneck, whose 1x1 map would normalise to zero). Decoder: ReLU -> transposed conv -> norm,
    with dropout on the 3 innermost levels as pix2pix's only noise (active in train mode only; the paper's
    ``CD512`` x3, where the reference code skips the innermost and drops ``depth - 5`` levels), and
    Tanh at the top. Channels: ``min(max_channels, base_channels * 2**i)`` at level ``i``.

    ``depth=None`` takes ``unet_depth(resolution)`` (bottleneck 1x1, as the reference ``unet_256``).
    ``resolution`` is the training size (default ``2**depth``); any ``H, W`` divisible by ``2**depth``
    work, e.g. 256x512 at depth 8.
    """

    dropout_levels = 3

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        depth: int | None = 8,
        norm: str = "batch",
        dropout: float = 0.5,
        resolution: int | None = None,
    ) -> None:
        super().__init__()
        bias = _use_bias(norm)
        _check_dropout(dropout)
        if depth is None:
            if resolution is None:
                raise ConfigError("U-Net depth=null follows the resolution: give model.resolution too")
            depth = unet_depth(resolution)
        if depth < 1:
            raise ConfigError(f"U-Net depth={depth} must be >= 1 (8 for 256 px, 7 for 128 px)")
        resolution = 2**depth if resolution is None else resolution
        if resolution % 2**depth:
            raise ConfigError(
                f"a U-Net of depth {depth} needs sides divisible by {2**depth}, but resolution is "
                f"{resolution}: use a depth with 2**depth dividing it, or depth: null for powers of two"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.depth = resolution, depth
        widths = [min(max_channels, base_channels * 2**i) for i in range(depth)]
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        for i, c in enumerate(widths):
            outer, inner = i == 0, i == depth - 1
            layers: list[nn.Module] = [] if outer else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if outer else widths[i - 1], c, 4, 2, 1, bias=bias))
            if not (outer or inner):
                layers.append(norm_layer(norm, c))
            self.down.append(nn.Sequential(*layers))

            c_out = out_channels if outer else widths[i - 1]
            layers = [nn.ReLU(inplace=True)]
            layers.append(nn.ConvTranspose2d(c if inner else 2 * c, c_out, 4, 2, 1, bias=bias or outer))
            if outer:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, c_out))
                if dropout and i >= depth - self.dropout_levels:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_divisible(
            x, 2**self.depth, f"a U-Net of depth {self.depth}", " or lower model.depth (log2 of the side)"
        )
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)  # level i: [N, widths[i], H / 2^(i+1), W / 2^(i+1)]
        x = self.up[-1](skips.pop())
        for up in reversed(self.up[:-1]):
            x = up(torch.cat([skips.pop(), x], dim=1))
        return x


def _pad(padding: str, size: int) -> tuple[list[nn.Module], int]:
    """``(explicit pad layers, conv padding)`` for a ``padding`` mode."""
    if padding == "reflect":
        return [nn.ReflectionPad2d(size)], 0
    if padding == "replicate":
        return [nn.ReplicationPad2d(size)], 0
    if padding == "zero":
        return [], size
    raise ConfigError(f"unknown padding {padding!r}: set model.padding to one of {', '.join(PADDINGS)}")


class ResnetBlock(nn.Module):
    """``x + (pad, 3x3 conv, norm, ReLU, [dropout], pad, 3x3 conv, norm)(x)``, shape-preserving."""

    def __init__(self, channels: int, norm: str, dropout: float, padding: str) -> None:
        super().__init__()
        bias = _use_bias(norm)
        pad, p = _pad(padding, 1)
        layers = [*pad, nn.Conv2d(channels, channels, 3, 1, p, bias=bias), norm_layer(norm, channels)]
        layers.append(nn.ReLU(inplace=True))
        if dropout:
            layers.append(nn.Dropout(dropout))
        pad, p = _pad(padding, 1)
        layers += [*pad, nn.Conv2d(channels, channels, 3, 1, p, bias=bias), norm_layer(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (after Johnson et al., 2016): ``[N, C_in, H, W]`` -> 7x7 conv ``[N, B, H, W]``
    -> two stride-2 convs ``[N, 4B, H/4, W/4]`` -> ``n_blocks`` residual blocks -> two transposed convs
    ``[N, B, H, W]`` -> 7x7 conv, Tanh ``[N, C_out, H, W]``.

    Works at any ``H, W`` divisible by 4 (6 blocks for 128 px, 9 for 256 px in the paper); reflection
    padding avoids the border artefacts of zero padding.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        bias = _use_bias(norm)
        _check_dropout(dropout)
        if n_blocks < 0:
            raise ConfigError(f"n_blocks={n_blocks} must be >= 0 (6 for 128 px, 9 for 256 px)")
        self.in_channels, self.out_channels = in_channels, out_channels
        b = base_channels
        pad, p = _pad(padding, 3)
        layers = [*pad, nn.Conv2d(in_channels, b, 7, 1, p, bias=bias), norm_layer(norm, b), nn.ReLU(True)]
        for c in (b, 2 * b):
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(4 * b, norm, dropout, padding) for _ in range(n_blocks)]
        for c in (4 * b, 2 * b):
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias),
                norm_layer(norm, c // 2),
                nn.ReLU(True),
            ]
        pad, p = _pad(padding, 3)
        layers += [*pad, nn.Conv2d(b, out_channels, 7, 1, p), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_divisible(x, 4, "the ResNet generator (two stride-2 downsamplings)")
        return self.net(x)


def _patch_spec(n_layers: int) -> list[tuple[int, int, int]]:
    """``(kernel, stride, padding)`` of each conv of a PatchGAN with ``n_layers`` strided layers:
    ``n_layers`` 4x4 stride-2 convs, one 4x4 stride-1 conv, the 4x4 stride-1 logit conv; for 0 the
    PixelGAN's three 1x1 convs."""
    if n_layers < 0:
        raise ConfigError(f"n_layers={n_layers} must be >= 0 (3 = 70x70 PatchGAN, 0 = 1x1 PixelGAN)")
    if n_layers == 0:
        return [(1, 1, 0)] * 3
    return [(4, 2, 1)] * n_layers + [(4, 1, 1)] * 2


def receptive_field(n_layers: int) -> int:
    """Side of the input window each PatchGAN logit sees: 70 for 3, 34 for 2, 16 for 1, 1 for 0."""
    rf = 1
    for k, s, _ in reversed(_patch_spec(n_layers)):
        rf = (rf - 1) * s + k
    return rf


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``[N, C, H, W]`` -> logits ``[N, 1, h, w]`` (no sigmoid), each judging one
    ``receptive_field(n_layers)``-sized patch; losses average over every element of the map.

    ``n_layers=3`` is pix2pix's 70x70 D (256 px -> 30x30 logits); ``n_layers=0`` is the 1x1 PixelGAN
    (``h, w = H, W``), which only sees colour. Convs: LeakyReLU(0.2) after each, norm on all but the first
    and the last; channels ``base_channels * min(2**i, 8)``. ``in_channels=6`` is pix2pix's conditional
    D on ``cat(input, output)``.
    """

    def __init__(
        self, in_channels: int = 6, base_channels: int = 64, n_layers: int = 3, norm: str = "batch"
    ) -> None:
        super().__init__()
        bias = _use_bias(norm)
        self.in_channels, self.n_layers, self.spec = in_channels, n_layers, _patch_spec(n_layers)
        self.receptive_field = receptive_field(n_layers)
        widths = [in_channels] + [base_channels * min(2**i, 8) for i in range(len(self.spec) - 1)] + [1]
        layers: list[nn.Module] = []
        for i, (k, s, p) in enumerate(self.spec):
            first, last = i == 0, i == len(self.spec) - 1
            layers.append(nn.Conv2d(widths[i], widths[i + 1], k, s, p, bias=bias or first or last))
            if not last:
                layers += [] if first else [norm_layer(norm, widths[i + 1])]
                layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        oh, ow = h, w
        for k, s, p in self.spec:
            oh, ow = (oh + 2 * p - k) // s + 1, (ow + 2 * p - k) // s + 1
        if oh < 1 or ow < 1:
            raise ConfigError(
                f"a PatchGAN with n_layers={self.n_layers} cannot judge {h}x{w} images (no patch fits): "
                "use larger images or fewer layers (model.discriminator.n_layers)"
            )
        return self.net(x)
