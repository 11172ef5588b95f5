"""Top-k generator updates (Sinha et al., NeurIPS 2020, "Top-k Training of GANs").

The generator learns only from the ``k`` fakes of each batch that D scores as most realistic. The
gradient of a fake that D finds clearly fake points towards where D is high on average, which on
multi-modal data is often *between* modes; dropping those samples stops them pulling G's mass
off the data. ``k`` starts at the whole batch and shrinks geometrically to ``min_fraction`` of it.
"""

from __future__ import annotations

import math

import torch

from ganforge.errors import ConfigError


class TopK:
    """``k(g_step) = ceil(n * max(min_fraction, decay ** (g_step / every)))`` of ``n`` fakes per G update.

    Args:
        min_fraction: the smallest share of the batch kept (the paper's nu; 0.5 to 0.75 work well).
        decay: factor on the kept share every ``every`` G updates (the paper's gamma = 0.99 per epoch).
        every: G updates between two decay factors.
    """

    def __init__(self, min_fraction: float = 0.5, decay: float = 0.99, every: int = 100) -> None:
        if not 0.0 < min_fraction <= 1.0:
            raise ConfigError(f"model.top_k.min_fraction={min_fraction} must be in (0, 1]")
        if not 0.0 < decay <= 1.0:
            raise ConfigError(f"model.top_k.decay={decay} must be in (0, 1]")
        if every < 1:
            raise ConfigError(f"model.top_k.every={every} must be >= 1")
        self.min_fraction, self.decay, self.every = min_fraction, decay, every

    def fraction(self, g_step: int) -> float:
        """Share of the batch that trains G at this G update (a function of the step: exact on resume)."""
        return max(self.min_fraction, self.decay ** (g_step / self.every))

    def k(self, n: int, g_step: int) -> int:
        return max(1, min(n, math.ceil(n * self.fraction(g_step) - 1e-9)))

    def select(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None, g_step: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The ``k`` highest fake logits (and, for relativistic losses, the reals paired with them)."""
        n = fake_logits.shape[0]
        k = self.k(n, g_step)
        if k == n:
            return fake_logits, real_logits
        index = fake_logits.detach().topk(k, sorted=False).indices
        return fake_logits[index], (real_logits[index] if real_logits is not None else None)

    def __repr__(self) -> str:
        return f"TopK(min_fraction={self.min_fraction}, decay={self.decay}, every={self.every})"
