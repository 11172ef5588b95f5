"""BigGAN-lite (Brock et al., 2019) for 32, 64 and 128 px: BigGAN's architecture at small widths.

G: ``z`` is split into one chunk for the ``4x4`` input and one per up-block (hierarchical latents); each
block's batch norms take their gains and biases from ``[shared class embedding, z chunk]``. One SAGAN
self-attention block sits at ``attention_resolution`` in G and in D. Spectral norm everywhere in G and D;
D is SNGAN's residual network with a projection head. ``OrthogonalRegularizer`` is BigGAN's G-side
regulariser. With ``num_classes=0`` (unlabelled data) the norms are conditioned on the z chunks only.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.sngan import DBlock, GBlock, ProjectionHead, check_resolution, conv, linear
from ganforge.regularizers import Regularizer

# Width multipliers (BigGAN-PyTorch's architectures): G's 4x4 input then each up-block's output;
# D's (width, downsample) per block.
G_PLANS = {32: (4, 4, 4, 4), 64: (16, 16, 8, 4, 2), 128: (16, 16, 8, 4, 2, 1)}
D_PLANS = {
    32: ((4, True), (4, True), (4, False), (4, False)),
    64: ((1, True), (2, True), (4, True), (8, True), (16, False)),
    128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
}


def _attention_index(sizes: list[int], attention_resolution: int | None, resolution: int, net: str) -> int:
    """Index of the block after which attention runs (-1 = none); ``None`` means ``resolution / 2``."""
    res = resolution // 2 if attention_resolution is None else attention_resolution
    if res == 0:
        return -1
    if res not in sizes:
        raise ConfigError(
            f"BigGAN's {net} has no {res} px stage for self-attention at {resolution} px; set "
            f"attention_resolution to one of {sorted(set(sizes))}, 0 (no attention) or null (resolution/2)"
        )
    return sizes.index(res)


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al., 2019) as in BigGAN: keys/values max-pooled 2x, ``x + gamma*o``.

    ``gamma`` starts at 0 so the block starts as the identity and the network learns how much to attend.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        c8, c2 = max(1, channels // 8), max(1, channels // 2)
        self.theta, self.phi = conv(channels, c8, 1, True), conv(channels, c8, 1, True)
        self.g, self.o = conv(channels, c2, 1, True), conv(c2, channels, 1, True)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        query = self.theta(x).flatten(2)  # [N, C/8, HW]
        key = F.max_pool2d(self.phi(x), 2).flatten(2)  # [N, C/8, HW/4]
        value = F.max_pool2d(self.g(x), 2).flatten(2)  # [N, C/2, HW/4]
        attn = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # [N, HW, HW/4]
        return x + self.gamma * self.o((value @ attn.transpose(1, 2)).view(n, -1, h, w))


class LinearBatchNorm2d(nn.Module):
    """Conditional BN with per-sample gain ``1 + W_g c`` and bias ``W_b c`` linear in a vector ``c``."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = linear(cond_dim, channels, True, bias=False)
        self.bias = linear(cond_dim, channels, True, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(cond))[:, :, None, None] + self.bias(cond)[:, :, None, None]


class BigGANGenerator(nn.Module):
    """``z -> chunks z_i; linear(z_0) [N, W0, 4, 4] -> blocks([embed(y), z_i]), attention -> [N,C,R,R]``."""

    def __init__(
        self,
        z_dim: int = 120,
        resolution: int = 32,
        channels: int = 3,
        num_classes: int | None = 0,
        base_channels: int = 32,
        shared_dim: int = 128,
        attention_resolution: int | None = None,
    ) -> None:
        super().__init__()
        check_resolution(resolution, "BigGAN")
        self.z_dim, self.resolution, self.channels = z_dim, resolution, channels
        self.num_classes = int(num_classes or 0)
        widths = [m * base_channels for m in G_PLANS[resolution]]
        num_blocks = len(widths) - 1
        if z_dim < num_blocks + 1:
            raise ConfigError(
                f"BigGAN at {resolution} px splits z into {num_blocks + 1} chunks: z_dim >= that"
            )
        self.z_chunks = [len(c) for c in torch.arange(z_dim).tensor_split(num_blocks + 1)]
        self.shared = nn.Embedding(self.num_classes, shared_dim) if self.num_classes else None
        y_dim = shared_dim if self.num_classes else 0
        self.linear = linear(self.z_chunks[0], widths[0] * 16, True)
        self.blocks = nn.ModuleList(
            GBlock(a, b, functools.partial(LinearBatchNorm2d, cond_dim=y_dim + zc), use_sn=True)
            for (a, b), zc in zip(itertools.pairwise(widths), self.z_chunks[1:], strict=True)
        )
        sizes = [4 * 2 ** (i + 1) for i in range(num_blocks)]
        self.attention_after = _attention_index(sizes, attention_resolution, resolution, "generator")
        a = self.attention_after
        self.attention = SelfAttention(widths[a + 1]) if a >= 0 else None
        self.out = nn.Sequential(
            nn.BatchNorm2d(widths[-1]), nn.ReLU(), conv(widths[-1], channels, 3, True), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        zs = torch.split(z, self.z_chunks, dim=1)
        if self.shared is None:
            y = z.new_zeros(len(z), 0)
        elif labels is None:
            raise ValueError("a class-conditional BigGAN generator needs labels [N]")
        else:
            y = self.shared(labels)
        h = self.linear(zs[0]).view(len(z), -1, 4, 4)
        for i, (block, z_i) in enumerate(zip(self.blocks, zs[1:], strict=True)):
            h = block(h, torch.cat([y, z_i], dim=1))
            if i == self.attention_after:
                h = self.attention(h)
        return self.out(h)


class BigGANDiscriminator(nn.Module):
    """``x [N, C, R, R] -> down-blocks, one attention block -> ReLU, sum pool -> projection logits [N]``."""

    def __init__(
        self,
        resolution: int = 32,
        channels: int = 3,
        num_classes: int | None = 0,
        base_channels: int = 32,
        attention_resolution: int | None = None,
    ) -> None:
        super().__init__()
        check_resolution(resolution, "BigGAN")
        self.resolution, self.channels = resolution, channels
        self.num_classes = int(num_classes or 0)
        plan = D_PLANS[resolution]
        sizes = list(itertools.accumulate(plan, lambda r, p: r // 2 if p[1] else r, initial=resolution))[1:]
        attention_after = _attention_index(sizes, attention_resolution, resolution, "discriminator")
        layers: list[nn.Module] = []
        c_in = channels
        for i, (mult, down) in enumerate(plan):
            layers.append(DBlock(c_in, mult * base_channels, down, preactivation=i > 0))
            c_in = mult * base_channels
            if i == attention_after:
                layers.append(SelfAttention(c_in))
        self.blocks = nn.Sequential(*layers)
        self.head = ProjectionHead(c_in, self.num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.blocks(x), labels)


def orthogonal_penalty(net: nn.Module) -> torch.Tensor:
    """``sum_W ||W W^T * (1 - I)||_F^2`` over ``net``'s weights, ``W = weight.flatten(1)`` (rows = units).

    Class embeddings, biases and norm gains are left out, as in BigGAN. Under spectral norm this is the
    raw weight. Computed as ``||W^T W||_F^2 - sum_i ||w_i||^4`` (same value) with the smaller Gram matrix,
    so a ``[16384, 30]`` input layer costs a 30x30 product, not a 16384x16384 one.
    """
    skip = {id(p) for m in net.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    total = torch.zeros((), device=next(net.parameters()).device)
    for p in net.parameters():
        if p.ndim < 2 or id(p) in skip:
            continue
        w = p.flatten(1)
        gram = w.T @ w if w.shape[0] > w.shape[1] else w @ w.T
        total = total + gram.square().sum() - w.square().sum(1).square().sum()
    return total


class OrthogonalRegularizer(Regularizer):
    """BigGAN's orthogonal regularisation of G (Brock et al., 2019), ``weight = beta`` (1e-4 in the paper).

    Off-diagonal only: it decorrelates filters without constraining their norms, which makes G amenable
    to the truncation trick. (The authors' code applies the gradient ``2 M W``, half of this term's.)
    """

    target = "g"

    def __init__(self, weight: float = 1e-4, interval: int = 1) -> None:
        super().__init__(weight, interval)

    def g_penalty(self, module: Any, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return orthogonal_penalty(module.G)
