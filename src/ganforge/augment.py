"""Differentiable augmentation applied to everything the discriminator sees (real and fake).

The module calls ``augment(x)`` before every D forward and ``augment.update(real_logits)`` after each
D update, so adaptive schemes (ADA) can steer their probability ``p`` from D's overfitting signal.

Every op is differentiable in the images, so G's gradient passes through the augmentation: D never
sees un-augmented data and G cannot learn to produce the augmentations themselves ("leaking").
Random parameters are drawn per sample from the global torch RNG (restored by exact resume).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ganforge.errors import ConfigError

Op = Callable[[torch.Tensor], torch.Tensor]


def _refresh_host_copies(module: Augment, incompatible_keys: Any) -> None:
    module._after_load()


class Augment(nn.Module):
    """Base class: identity with probability ``p`` = 0; subclasses override ``forward``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        # Saved in checkpoints, in float64 so that it holds the Python float the coin flips use
        # bit for bit: a float32 copy restored a rounded p, and where the exact one reached 0 (no more
        # draws) the rounded one stayed ~1e-9 and kept drawing, so a resumed run diverged.
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float64))
        # A host copy of p for the per-sample coin flips: reading the buffer on a GPU would stall
        # the CUDA queue at every D pass. Set together with the buffer, and from it on loading.
        self.p_host = float(p)
        self.register_load_state_dict_post_hook(_refresh_host_copies)

    def _after_load(self) -> None:
        self.p_host = float(self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def update(self, real_logits: torch.Tensor) -> None:
        """Called after each D update with D's logits on (augmented) real data."""


# -- ops: images [N, C, H, W] in [-1, 1] -> same shape, random parameters per sample --------------------
def _uniform(x: torch.Tensor) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def _normal(x: torch.Tensor) -> torch.Tensor:
    return torch.randn(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def scale_about_mean(x: torch.Tensor, factor: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    return (x - mean) * factor + mean


def shift(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, reflect: bool = False) -> torch.Tensor:
    """Move sample ``i`` by ``(dx[i], dy[i])`` whole pixels; vacated pixels are 0 or mirrored."""
    n, c, h, w = x.shape

    def source(size: int, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(size, device=x.device)[None, :] - d[:, None]  # [N, size]: pixel j <- j - d
        valid = (idx >= 0) & (idx < size)
        if reflect and size > 1:
            period = 2 * (size - 1)
            idx = idx.remainder(period)
            idx = torch.where(idx >= size, period - idx, idx)
        return idx.clamp(0, size - 1), valid

    ix, vx = source(w, dx)
    iy, vy = source(h, dy)
    out = x.gather(3, ix[:, None, None, :].expand(n, c, h, w))
    out = out.gather(2, iy[:, None, :, None].expand(n, c, h, w))
    if reflect:
        return out
    return out * (vy[:, :, None] & vx[:, None, :]).unsqueeze(1).to(x.dtype)


def random_shift(x: torch.Tensor, ratio: float, reflect: bool = False) -> torch.Tensor:
    """Integer translation by up to ``ratio`` of the image size in each direction."""
    n, _, h, w = x.shape
    sx, sy = int(w * ratio + 0.5), int(h * ratio + 0.5)
    dx = torch.randint(-sx, sx + 1, (n,), device=x.device)
    dy = torch.randint(-sy, sy + 1, (n,), device=x.device)
    return shift(x, dx, dy, reflect)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a ``ratio``-sized rectangle centred anywhere in the image (DiffAugment)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h, (n, 1), device=x.device) - ch // 2
    left = torch.randint(0, w, (n, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device)[None, :] - top  # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] - left
    inside = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[:, None, :]
    return x * (~inside).unsqueeze(1).to(x.dtype)


def rot90(x: torch.Tensor) -> torch.Tensor:
    """Rotate each sample by a random multiple of 90 degrees (only 0/180 for non-square images)."""
    k = torch.randint(0, 4, (x.shape[0],), device=x.device)
    if x.shape[-1] != x.shape[-2]:
        k = k & 2
    out = x
    # every turn is computed: asking first whether any sample needs it would read back from the GPU
    for turns in (1, 2, 3) if x.shape[-1] == x.shape[-2] else (2,):
        out = torch.where((k == turns).view(-1, 1, 1, 1), torch.rot90(x, turns, dims=(2, 3)), out)
    return out


DIFFAUGMENT_OPS: dict[str, list[Op]] = {
    # Zhao et al. (2020): brightness +U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5)
    "color": [
        lambda x: x + (_uniform(x) - 0.5),
        lambda x: scale_about_mean(x, _uniform(x) * 2, (1,)),
        lambda x: scale_about_mean(x, _uniform(x) + 0.5, (1, 2, 3)),
    ],
    "translation": [lambda x: random_shift(x, 0.125)],
    "cutout": [lambda x: cutout(x, 0.5)],
}

ADA_OPS: dict[str, Op] = {
    # StyleGAN2-ADA's "blit" and colour groups with its default strengths.
    "xflip": lambda x: x.flip(3),
    "rotate90": rot90,
    "translation": lambda x: random_shift(x, 0.125, reflect=True),
    "brightness": lambda x: x + 0.2 * _normal(x),
    "contrast": lambda x: scale_about_mean(x, torch.exp2(0.5 * _normal(x)), (1, 2, 3)),
    "saturation": lambda x: scale_about_mean(x, torch.exp2(_normal(x)), (1,)),
}


def apply_with_probability(op: Op, x: torch.Tensor, p: float) -> torch.Tensor:
    """``op`` on each sample independently with probability ``p`` (exactly the input when ``p`` = 0)."""
    if p <= 0:
        return x
    if p >= 1:
        return op(x)
    chosen = torch.rand(x.shape[0], device=x.device) < p
    return torch.where(chosen.view(-1, *[1] * (x.ndim - 1)), op(x), x)


def _check_images(x: torch.Tensor, name: str) -> None:
    if x.ndim != 4:
        raise ConfigError(
            f"{name} augments images [N, C, H, W] but got a batch of shape {tuple(x.shape)}; "
            "use augment=none for non-image data such as 2-D points"
        )


def _parse(names: str | list[str], known: dict, what: str) -> list[str]:
    items = [s.strip() for s in names.split(",")] if isinstance(names, str) else list(names)
    items = [s for s in items if s]
    unknown = [s for s in items if s not in known]
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; choose from {', '.join(known)}")
    return items


class DiffAugment(Augment):
    """Differentiable Augmentation (Zhao et al., 2020) for data-efficient GAN training.

    Every op of ``policy`` (``color``, ``translation``, ``cutout``) is applied to the whole batch, with
    random parameters per sample; ``p`` < 1 applies each op to a sample only with that probability.
    """

    def __init__(self, policy: str | list[str] = "color,translation,cutout", p: float = 1.0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"augment.p={p} must be in [0, 1]")
        super().__init__(p)
        self.policy = _parse(policy, DIFFAUGMENT_OPS, "DiffAugment policy")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "DiffAugment")
        for name in self.policy:
            for op in DIFFAUGMENT_OPS[name]:
                x = apply_with_probability(op, x, self.p_host)
        return x

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}, p={self.p_host}"


class ADA(Augment):
    """Adaptive discriminator augmentation (Karras et al., 2020).

    Each op in ``ops`` hits each sample with probability ``p``. Every ``interval`` D updates, the
    overfitting heuristic ``r_t = E[sign(D(real))]`` is compared with ``target``: above it D is too
    sure of the real data and ``p`` grows, below it ``p`` shrinks, by ``N / (kimg * 1000)`` for the
    ``N`` real D outputs seen, so ``p`` can go from 0 to 1 within ``kimg`` thousand of them.
    ``p`` and the running statistics are buffers: checkpoints restore them.
    """

    def __init__(
        self,
        p: float = 0.0,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        ops: str | list[str] = "xflip,rotate90,translation,brightness,contrast,saturation",
        max_p: float = 1.0,
    ) -> None:
        if not 0.0 <= p <= max_p <= 1.0:
            raise ConfigError(f"augment.p={p} and augment.max_p={max_p} must satisfy 0 <= p <= max_p <= 1")
        if interval < 1 or kimg <= 0:
            raise ConfigError(f"augment.interval={interval} must be >= 1 and augment.kimg={kimg} > 0")
        super().__init__(p)
        self.target, self.interval, self.kimg, self.max_p = target, interval, kimg, max_p
        self.ops = _parse(ops, ADA_OPS, "ADA ops")
        # sum of sign(D(real)), number of D outputs, D updates since the last adjustment
        self.register_buffer("stats", torch.zeros(3, dtype=torch.float64))
        self.register_buffer("rt", torch.tensor(math.nan, dtype=torch.float64))  # last r_t, for inspection
        self.updates_since = 0  # host copy of stats[2]: deciding when to adjust needs no GPU read

    def _after_load(self) -> None:
        super()._after_load()
        self.updates_since = int(self.stats[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "ADA")
        for name in self.ops:
            x = apply_with_probability(ADA_OPS[name], x, self.p_host)
        return x

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor) -> None:
        self.stats[0] += real_logits.sign().sum()
        self.stats[1] += real_logits.numel()
        self.stats[2] += 1
        self.updates_since += 1
        if self.updates_since < self.interval:
            return
        self.updates_since = 0
        stats = self.stats.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats[:2])  # every rank takes the same step from everyone's outputs
        sign_sum, count = float(stats[0]), float(stats[1])
        self.stats.zero_()
        self.rt.fill_(sign_sum / max(count, 1.0))
        direction = float(self.rt) - self.target
        step = (direction > 0) - (direction < 0)
        step *= count / (self.kimg * 1000)
        self.p_host = min(max(self.p_host + step, 0.0), self.max_p)
        self.p.fill_(self.p_host)

    def extra_repr(self) -> str:
        return f"ops={','.join(self.ops)}, target={self.target}, interval={self.interval}, kimg={self.kimg}"
