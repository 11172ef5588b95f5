"""Stop (or roll back) a run whose losses or weights stop being finite numbers."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ganforge.checkpoint import CheckpointError, load_checkpoint
from ganforge.errors import ConfigError, GanforgeError

log = logging.getLogger("ganforge")

LOSS_KEYS = ("loss/d", "loss/g")


class NonFiniteError(GanforgeError):
    """A loss or a weight became NaN or infinite during training."""


class NonFiniteGuard(L.Callback):
    """Check every training step's losses (``loss/d``, ``loss/g``) and, optionally, G's and D's weights.

    Runs at the end of each batch, before the checkpoint callback of that step (Lightning runs
    checkpoint callbacks last), so a non-finite state is never written as a checkpoint.

    Args:
        action: ``stop`` raises ``NonFiniteError`` naming the step and the last good checkpoint
            (``train.py`` exits with status 2). ``rollback`` loads the last good checkpoint's network
            weights and buffers (G, D, EMA generator, ADA state ...) and optimizer states, then carries
            on: the step counter, data position, LR schedulers and random streams are *not* rewound, so
            training continues at the next step with fresh batches and latents, and the steps since that
            checkpoint count towards ``max_steps`` without their updates. After ``max_rollbacks``
            rollbacks (or with no checkpoint to roll back to) it stops as ``stop`` does.
        check_weights: also check the parameters of G and D (one fused norm per network and step);
            catches a step whose loss was finite but whose update was not.
        max_rollbacks: rollbacks allowed in one run.
    """

    def __init__(self, action: str = "stop", check_weights: bool = True, max_rollbacks: int = 3) -> None:
        if action not in ("stop", "rollback"):
            raise ConfigError(f"callbacks.non_finite_guard.action={action!r} must be 'stop' or 'rollback'")
        if max_rollbacks < 0:
            raise ConfigError(f"callbacks.non_finite_guard.max_rollbacks={max_rollbacks} must be >= 0")
        self.action = action
        self.check_weights = check_weights
        self.max_rollbacks = max_rollbacks
        self.rollbacks = 0

    # -- checks -------------------------------------------------------------------------------------
    def _bad_values(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[str]:
        """Names of this step's non-finite values; one device-to-host transfer for all checks."""
        step = trainer.global_step
        n_critic = int(getattr(pl_module, "n_critic", 1) or 1)
        metrics = trainer.callback_metrics
        names: list[str] = []
        values: list[torch.Tensor] = []
        for key in LOSS_KEYS:
            # loss/g is only logged on G-update steps; between them callback_metrics holds the old value.
            if key in metrics and not (key == "loss/g" and step % n_critic):
                names.append(key)
                values.append(torch.as_tensor(metrics[key]).detach().reshape(()).float())
        if self.check_weights:
            for name in ("G", "D"):
                net = getattr(pl_module, name, None)
                params = [p.detach() for p in net.parameters()] if isinstance(net, torch.nn.Module) else []
                if params:
                    names.append(f"weights of {name}")
                    values.append(_norm(params))
        if not values:
            return []
        device = values[-1].device
        flat = torch.stack([v.to(device) for v in values]).cpu().tolist()
        return [
            name if name.startswith("weights") else f"{name}={value}"
            for name, value in zip(names, flat, strict=True)
            if not math.isfinite(value)
        ]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        bad = self._bad_values(trainer, pl_module)
        # Under DDP all ranks must take the same decision (losses are per rank; weights are in sync).
        if not trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            return
        bad = bad or ["values on another rank"]
        step = trainer.global_step
        good = last_good_checkpoint(trainer)
        what = f"non-finite {', '.join(bad)} at step {step}"
        if self.action == "rollback" and good is not None and self.rollbacks < self.max_rollbacks:
            self.rollbacks += 1
            good_step = self._rollback(trainer, pl_module, good, what)
            log.warning(
                "%s: rolled back the weights and optimizer states to %s (step %d), rollback %d of %d; "
                "training continues at step %d",
                what, good, good_step, self.rollbacks, self.max_rollbacks, step + 1,
            )  # fmt: skip
            return
        where = "no checkpoint was written before it" if good is None else f"last good checkpoint: {good}"
        if self.action == "rollback":
            reason = "no checkpoint to roll back to" if good is None else f"{self.rollbacks} rollbacks done"
            what += f" ({reason})"
        raise NonFiniteError(
            f"training diverged: {what}; {where}. Lower the learning rates, add gradient clipping "
            "(model.grad_clip_d/g) or a regulariser (reg=r1), then resume with ckpt_path=<that checkpoint>"
        )

    def _rollback(self, trainer: L.Trainer, pl_module: L.LightningModule, path: str, what: str) -> int:
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as e:
            raise NonFiniteError(f"training diverged: {what}; rolling back failed: {e}") from e
        state = ckpt["state_dict"]
        if not _all_finite([v for v in state.values() if v.is_floating_point()]):
            raise NonFiniteError(f"training diverged: {what}; the checkpoint {path} is not finite either")
        pl_module.load_state_dict(state)
        for optimizer, opt_state in zip(trainer.optimizers, ckpt["optimizer_states"], strict=True):
            optimizer.load_state_dict(opt_state)
        return int(ckpt.get("global_step", -1))


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Norm over all tensors: inf/NaN if any element is (or if the norm overflows float32)."""
    norms = torch._foreach_norm(tensors) if hasattr(torch, "_foreach_norm") else [t.norm() for t in tensors]
    return torch.stack([n.float() for n in norms]).norm()


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    return bool(torch.isfinite(_norm(tensors))) if tensors else True


def last_good_checkpoint(trainer: L.Trainer) -> str | None:
    """The newest checkpoint of this run: the checkpoint callback's ``last.ckpt``, else the newest file."""
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    last = getattr(callback, "last_model_path", "")
    if last and Path(last).is_file():
        return str(last)
    dirpath = getattr(callback, "dirpath", None)
    if not dirpath or not Path(dirpath).is_dir():
        return None
    files = [p for p in Path(dirpath).glob("*.ckpt") if p.is_file()]
    return str(max(files, key=lambda p: p.stat().st_mtime)) if files else None
