"""Learning-rate schedules that configs name (Hydra ``_partial_`` factories taking the optimizer)."""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError


class LinearDecayFactor:
    """LR factor at update ``t``: 1 until ``start * total_steps``, then linearly to 0 at ``total_steps``.

    A callable object, not a lambda, so that ``LambdaLR`` keeps it in its state dict (exact resume).
    """

    def __init__(self, total_steps: int, start: float) -> None:
        self.total_steps, self.start = int(total_steps), float(start)

    def __call__(self, t: int) -> float:
        begin = self.start * self.total_steps
        if t <= begin:
            return 1.0
        return max(0.0, 1.0 - (t - begin) / max(self.total_steps - begin, 1.0))


def linear_decay(
    optimizer: torch.optim.Optimizer, total_steps: int, start: float = 0.5
) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant, then linear decay to 0 over the last ``1 - start`` of ``total_steps`` own updates
    (Pix2Pix and CycleGAN: the second half of training)."""
    if total_steps < 1 or not 0.0 <= start < 1.0:
        raise ConfigError(f"linear_decay: total_steps={total_steps} must be >= 1 and start={start} in [0, 1)")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearDecayFactor(total_steps, start))
