"""Discriminator layers that let D look at a whole minibatch, so a collapsed G is easy to spot.

Both append features computed across samples: a batch of near-identical fakes then looks unlike a
batch of varied real data, and G is pushed to spread out (Salimans et al., 2016; Karras et al., 2018).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (ProGAN, Karras et al. 2018): ``[N, C, H, W] -> [N, C + F, H, W]``.

    Sample ``i`` is grouped with the samples ``j = i mod N/G``; the channels are split into
    ``num_channels`` (F) parts, each giving one std map averaged over its channels and pixels. A batch
    of near-identical fakes then stands out against varied real data.
    """

    couples_samples = True  # each output depends on the whole batch

    def __init__(self, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        if group_size < 1 or num_channels < 1:
            raise ConfigError(
                f"minibatch-std group_size={group_size} and num_channels={num_channels} must be >= 1 "
                "(0 turns the layer off where a model offers it)"
            )
        self.group_size, self.num_channels, self.eps = group_size, num_channels, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g, f = min(self.group_size, n), self.num_channels
        if n % g:
            raise ConfigError(
                f"a batch of {n} cannot be split into minibatch-std groups of {g}: use a batch size "
                "(divided by model.pack) that is a multiple of the group size"
            )
        y = x.reshape(g, n // g, f, c // f, h, w)
        y = (y.var(dim=0, unbiased=False) + self.eps).sqrt()  # [N/G, F, C/F, H, W]
        y = y.mean(dim=(2, 3, 4)).reshape(1, n // g, f, 1, 1)  # [1, N/G, F, 1, 1]
        return torch.cat([x, y.expand(g, -1, -1, h, w).reshape(n, f, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al., 2016): ``[N, A] -> [N, A + num_kernels]``.

    ``M_i = x_i T`` (``[B, C]`` per sample); feature ``b`` of sample ``i`` is
    ``sum_{j != i} exp(-||M_i,b - M_j,b||_1)``: how many other samples look like ``i`` under kernel ``b``.
    """

    couples_samples = True  # each output depends on the whole batch

    def __init__(self, in_features: int, num_kernels: int, kernel_dim: int = 5) -> None:
        super().__init__()
        if num_kernels < 1 or kernel_dim < 1:
            raise ConfigError(
                f"minibatch discrimination needs num_kernels >= 1 and kernel_dim >= 1, "
                f"got {num_kernels} and {kernel_dim}"
            )
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        # Small init: L1 distances of order 1, so exp(-d) neither saturates at 0 nor at 1 at the start.
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) / in_features**0.5 * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).view(-1, self.num_kernels, self.kernel_dim)  # [N, B, C]
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # [N, N, B]
        o = torch.exp(-dist).sum(1) - 1.0  # drop j == i (exp(0) = 1)
        return torch.cat([x, o], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}"
