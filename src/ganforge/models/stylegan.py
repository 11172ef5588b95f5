"""StyleGAN2 (Karras et al., 2020) in plain PyTorch: mapping + modulated synthesis, residual D.

Layout after NVlabs' stylegan2-ada-pytorch (``skip`` generator, ``resnet`` discriminator, equalised
learning rate everywhere), simplified so that it runs on any device without custom CUDA ops:

* resampling is bilinear up-sampling (G) and 2x2 average pooling (D) instead of the ``[1, 3, 3, 1]``
  FIR filters of ``upfirdn2d``: the same shapes and parameters, a little more aliasing;
* no mixed precision, no activation clamping, and ``w_avg`` / ``pl_mean`` are per-process statistics
  (the original averages ``pl_mean`` over GPUs);
* class conditioning: a learned embedding concatenated to ``z`` (G) and a projection with a learned
  class embedding (D), where the original maps one-hot labels through fully-connected networks;
* outputs are linear as in the paper while training and clamped to ``[-1, 1]`` in eval mode.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.equalized import EqualConv2d, EqualLinear, channel_widths, lrelu, normalize_2nd_moment
from ganforge.models.layers import MinibatchStd
from ganforge.regularizers import Regularizer

RESOLUTIONS = (32, 64, 128, 256)
NOISE_MODES = ("random", "const", "none")


def _check_resolution(resolution: int, channel_base: int) -> None:
    if resolution not in RESOLUTIONS:
        fix = "add data.resolution=32 to resize 28 px data such as Fashion-MNIST and MNIST"
        if resolution != 28:
            fix = "set data.resolution to one of them (e.g. data.resolution=32)"
        raise ConfigError(f"StyleGAN makes 32, 64, 128 or 256 px images, not {resolution} px: {fix}")
    if channel_base < resolution:
        raise ConfigError(
            f"channel_base={channel_base} leaves no channels at {resolution} px "
            f"(width = min(channel_base / resolution, channel_max)): use channel_base >= {resolution}"
        )


def upsample(x: torch.Tensor) -> torch.Tensor:
    """2x bilinear up-sampling (stands in for StyleGAN2's FIR-filtered transposed convolution)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


# -- generator ----------------------------------------------------------------------------------
def modulate(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True) -> torch.Tensor:
    """Per-sample weights: ``weight [O, I, k, k]`` scaled by ``styles [N, I]`` -> ``[N, O, I, k, k]``.

    Demodulation rescales every output filter to unit L2 norm, so unit-variance inputs give
    unit-variance outputs whatever the style: this replaces AdaIN's normalisation of activations.
    """
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    return w


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True
) -> torch.Tensor:
    """``x [N, I, H, W]`` convolved with each sample's own modulated weights -> ``[N, O, H, W]``.

    The batch is folded into channels and convolved once with ``groups=N``: one kernel launch instead
    of N, which is how the original runs it too.
    """
    n, c_in, h, w = x.shape
    weights = modulate(weight, styles, demodulate)  # [N, O, I, k, k]
    out = F.conv2d(
        x.reshape(1, n * c_in, h, w),
        weights.reshape(-1, c_in, *weight.shape[2:]),
        padding=weight.shape[-1] // 2,
        groups=n,
    )
    return out.reshape(n, -1, *out.shape[2:])


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (after 2x up-sampling if ``up``) + per-pixel noise + bias + leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool) -> None:
        super().__init__()
        self.up, self.resolution = up, resolution
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1: plain conv
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros(()))  # noise starts switched off and is learned
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.up:
            x = upsample(x)
        x = modulated_conv2d(x, self.weight, self.affine(w))
        if noise_mode == "random":
            r = self.resolution
            x = x + torch.randn(x.shape[0], 1, r, r, device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return lrelu(x + self.bias.view(1, -1, 1, 1))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation (colours keep their scale)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        return modulated_conv2d(x, self.weight, styles, demodulate=False) + self.bias.view(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    """One resolution: (constant 4x4 input | up-sampling conv) + conv + toRGB added to the image skip."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, channels: int
    ) -> None:
        super().__init__()
        first = resolution == 4
        self.const = nn.Parameter(torch.randn(out_channels, 4, 4)) if first else None
        self.conv0 = None if first else SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, up=False)
        self.torgb = ToRGB(out_channels, channels, w_dim)
        self.num_conv = 1 if first else 2

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws [N, num_conv + 1, w_dim]``; returns features and the image so far at this resolution."""
        w = iter(ws.unbind(dim=1))
        if self.const is not None:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, next(w), noise_mode)
        x = self.conv1(x, next(w), noise_mode)
        y = self.torgb(x, next(w))
        return x, (y if img is None else upsample(img) + y)


class SynthesisNetwork(nn.Module):
    """``ws [N, num_ws, w_dim] -> image [N, C, R, R]``; ``num_ws = 2 log2(R) - 2``.

    Each toRGB shares its ``w`` with the next block's first conv (as in the original), so style mixing
    at a cutoff switches whole resolutions.
    """

    def __init__(
        self, w_dim: int, resolution: int, channels: int, channel_base: int, channel_max: int
    ) -> None:
        super().__init__()
        widths = channel_widths(resolution, channel_base, channel_max)
        self.blocks = nn.ModuleList(
            SynthesisBlock(widths.get(r // 2, 0), widths[r], w_dim, r, channels) for r in widths
        )
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        """``noise_mode`` (random | const | none): by default random while training, const in eval mode."""
        noise_mode = noise_mode or ("random" if self.training else "const")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode={noise_mode!r}; use one of {NOISE_MODES}")
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """``z [N, z_dim] (+ labels [N]) -> ws [N, num_ws, w_dim]`` through an MLP with lr multiplier 0.01.

    Tracks ``w_avg``, the running mean of ``w`` during training (a buffer: checkpointed and copied to
    the EMA generator), which the truncation trick pulls samples towards.
    """

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int,
        num_classes: int = 0,
        num_layers: int = 8,
        lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        self.num_ws, self.num_classes, self.w_avg_beta = num_ws, num_classes, w_avg_beta
        self.embed = nn.Embedding(num_classes, w_dim) if num_classes else None
        widths = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * num_layers
        self.net = nn.Sequential(
            *(EqualLinear(a, b, lr_mul=lr_mul, activation=True) for a, b in itertools.pairwise(widths))
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = True,
    ) -> torch.Tensor:
        """``update_w_avg``: fold this batch into ``w_avg`` (in training mode only)."""
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            if labels is None:
                raise ValueError(
                    f"this generator is class-conditional ({self.num_classes} classes): pass labels"
                )
            x = torch.cat([x, normalize_2nd_moment(self.embed(labels))], dim=1)
        w = self.net(x)
        if self.training and update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws = torch.cat([self.w_avg.lerp(ws[:, :cut], truncation_psi), ws[:, cut:]], dim=1)
        return ws


class StyleGANGenerator(nn.Module):
    """StyleGAN2 generator ``z [N, z_dim] (+ labels [N]) -> images [N, C, R, R]``, R in 32..256.

    ``G.mapping(z, labels) -> ws [N, num_ws, w_dim]`` and ``G.synthesis(ws) -> images`` are exposed
    for path length regularisation and latent-space tools.

    Args:
        channel_base, channel_max: width at resolution ``r`` is ``min(channel_base // r, channel_max)``.
        mixing_prob: probability of style mixing per training batch (0 = off).
    """

    def __init__(
        self,
        z_dim: int = 128,
        w_dim: int = 128,
        resolution: int = 32,
        channels: int = 3,
        num_classes: int | None = 0,
        mapping_layers: int = 8,
        channel_base: int = 4096,
        channel_max: int = 256,
        mixing_prob: float = 0.9,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        _check_resolution(resolution, channel_base)
        if not 0.0 <= mixing_prob <= 1.0:
            raise ConfigError(f"mixing_prob={mixing_prob} must be in [0, 1]")
        self.z_dim, self.w_dim, self.resolution, self.channels = z_dim, w_dim, resolution, channels
        self.num_classes = int(num_classes or 0)
        self.mixing_prob = mixing_prob
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, channel_base, channel_max)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim, w_dim, self.num_ws, self.num_classes, mapping_layers, w_avg_beta=w_avg_beta
        )

    def mix_styles(self, ws: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Style mixing regularisation (training mode only): with probability ``mixing_prob`` the layers
        from a random cutoff on take the ``w`` of another random latent, so that neighbouring layers'
        styles do not learn to depend on each other."""
        if not self.training or self.mixing_prob == 0 or torch.rand(()) >= self.mixing_prob:
            return ws
        cut = int(torch.randint(1, self.num_ws, ()))
        other = self.mapping(torch.randn_like(z), labels, update_w_avg=False)
        return torch.cat([ws[:, :cut], other[:, cut:]], dim=1)

    def forward(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str | None = None,
    ) -> torch.Tensor:
        """``truncation_psi < 1`` trades variety for quality (0 gives the image of ``w_avg``);
        ``truncation_cutoff`` limits it to the first layers. ``noise_mode`` (random | const | none)
        defaults to random while training and const in eval mode, so samples are deterministic."""
        ws = self.mapping(z, labels, truncation_psi, truncation_cutoff)
        ws = self.mix_styles(ws, z, labels)
        img = self.synthesis(ws, noise_mode)
        return img if self.training else img.clamp(-1.0, 1.0)


# -- discriminator ------------------------------------------------------------------------------
class DiscriminatorBlock(nn.Module):
    """Residual block halving the resolution: two 3x3 convs + a 1x1 skip, each branch scaled by 1/sqrt 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gain = math.sqrt(0.5)
        return self.skip(x, gain) + self.conv1(self.conv0(x), gain)


class StyleGANDiscriminator(nn.Module):
    """StyleGAN2 residual discriminator ``x [N, C, R, R] (+ labels [N]) -> logits [N]``.

    fromRGB, one residual block per halving down to 4x4, then minibatch std, a 3x3 conv and two
    fully-connected layers. Conditional (``num_classes > 0``): projection, i.e. the logit is the dot
    product of a ``cmap_dim`` feature with a learned class embedding (Miyato & Koyama, 2018).
    """

    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        num_classes: int | None = 0,
        channel_base: int = 4096,
        channel_max: int = 256,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        cmap_dim: int | None = None,
    ) -> None:
        super().__init__()
        _check_resolution(resolution, channel_base)
        self.resolution, self.channels = resolution, channels
        self.num_classes = int(num_classes or 0)
        widths = channel_widths(resolution, channel_base, channel_max)
        c4 = widths[4]
        if c4 % mbstd_num_channels:
            raise ConfigError(
                f"mbstd_num_channels={mbstd_num_channels} must divide the 4x4 width {c4} "
                "(min(channel_base / 4, channel_max))"
            )
        self.from_rgb = EqualConv2d(channels, widths[resolution], 1)
        self.blocks = nn.Sequential(
            *(DiscriminatorBlock(widths[r], widths[r // 2]) for r in sorted(widths, reverse=True) if r > 4)
        )
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_num_channels)
        self.conv = EqualConv2d(c4 + mbstd_num_channels, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.cmap_dim = (cmap_dim or c4) if self.num_classes else 1
        self.out = EqualLinear(c4, self.cmap_dim)
        self.embed = nn.Embedding(self.num_classes, self.cmap_dim) if self.num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(self.from_rgb(x))  # [N, C4, 4, 4]
        x = self.fc(self.conv(self.mbstd(x)).flatten(1))
        out = self.out(x)  # [N, cmap_dim]
        if self.embed is None:
            return out.squeeze(1)
        if labels is None:
            raise ValueError(
                f"this discriminator is class-conditional ({self.num_classes} classes): pass labels"
            )
        return (out * self.embed(labels)).sum(dim=1) / math.sqrt(self.cmap_dim)


# -- regularisation -----------------------------------------------------------------------------
class PathLengthRegularizer(Regularizer):
    """StyleGAN2 path length regularisation: ``E (||J_w^T y|| - a)^2`` with ``y ~ N(0, I) / R``.

    Pushes a fixed-size step in ``w`` to give a fixed-size change in the image, whatever ``w``:
    a smoother, better conditioned generator. ``a`` (``pl_mean``, a checkpointed buffer) is a running
    mean of the lengths with ``decay``; the penalty uses ``1 / batch_shrink`` of the G batch to save
    time. Needs a generator with ``mapping(z, labels)`` and ``synthesis(ws)`` (``model=stylegan_lite``).
    """

    target = "g"

    def __init__(
        self, weight: float = 2.0, interval: int = 4, decay: float = 0.01, batch_shrink: int = 2
    ) -> None:
        super().__init__(weight, interval)
        if not 0.0 < decay <= 1.0 or batch_shrink < 1:
            raise ConfigError(
                f"path length decay={decay} must be in (0, 1] and batch_shrink={batch_shrink} >= 1"
            )
        self.decay, self.batch_shrink = decay, batch_shrink
        self.register_buffer("pl_mean", torch.zeros(()))

    def g_penalty(self, module: Any, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        G = module.G
        if not (hasattr(G, "mapping") and hasattr(G, "synthesis")):
            raise ConfigError(
                f"path length regularisation needs a generator with mapping(z, labels) and synthesis(ws); "
                f"{type(G).__name__} has none: use model=stylegan_lite or drop model.regularizers.pl"
            )
        n = max(1, z.shape[0] // self.batch_shrink)
        z, labels = z[:n], (labels[:n] if labels is not None else None)
        ws = G.mapping(z, labels)
        if hasattr(G, "mix_styles"):
            ws = G.mix_styles(ws, z, labels)
        img = G.synthesis(ws)
        y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()  # [n]
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.decay)
        self.pl_mean.copy_(pl_mean.detach())
        return (lengths - pl_mean).square().mean()
