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
from ganforge.tasks.base import STEP_LOSS_KEYS

log = logging.getLogger("ganforge")


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
        every_n_steps: read the checks back every this many steps. Every step is still checked, on the
            device, and the first non-finite step is the one reported; reading back less often keeps
            the GPU queue full. Steps with a checkpoint, sample grid or metric, the last step, a
            SIGTERM, epoch ends and an early stop (``trainer.max_time``) are always read back at once,
            so a non-finite state is never written.
    """

    def __init__(
        self,
        action: str = "stop",
        check_weights: bool = True,
        max_rollbacks: int = 3,
        every_n_steps: int = 1,
    ) -> None:
        if action not in ("stop", "rollback"):
            raise ConfigError(f"callbacks.non_finite_guard.action={action!r} must be 'stop' or 'rollback'")
        if max_rollbacks < 0:
            raise ConfigError(f"callbacks.non_finite_guard.max_rollbacks={max_rollbacks} must be >= 0")
        if every_n_steps < 1:
            raise ConfigError(f"callbacks.non_finite_guard.every_n_steps={every_n_steps} must be >= 1")
        self.action = action
        self.check_weights = check_weights
        self.max_rollbacks = max_rollbacks
        self.every_n_steps = every_n_steps
        self.rollbacks = 0
        self._pending: _Pending | None = None
        self._params: dict[tuple[str, int], list[torch.Tensor]] = {}

    # -- checks -------------------------------------------------------------------------------------
    def _step_values(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> tuple[list[str], torch.Tensor]:
        """This step's checked values in fixed slots (names, one device tensor); stays on the device.

        A value not produced this step (``loss/g`` between G updates) is a finite 0 in its slot, made
        on the device: a CPU zero copied there would wait for the whole CUDA queue (n_critic > 1 runs
        would stall on 4 steps of 5).
        """
        # GANModule keeps this step's losses (loss/g on G-update steps only); other modules: what they log
        losses = getattr(pl_module, "step_losses", None)
        if losses is None:
            losses = trainer.callback_metrics
        device = pl_module.device
        names: list[str] = list(STEP_LOSS_KEYS)
        values: list[torch.Tensor] = []
        for key in STEP_LOSS_KEYS:
            if key in losses:
                value = torch.as_tensor(losses[key]).detach().reshape(()).float().to(device)
            else:
                value = torch.zeros((), device=device)
            values.append(value)
        if self.check_weights:
            for name in ("G", "D"):
                params = self._weights(pl_module, name)
                if params:
                    names.append(f"weights of {name}")
                    with torch.no_grad():
                        values.append(_norm(params).to(device))
        return names, torch.stack(values)

    def _weights(self, pl_module: L.LightningModule, name: str) -> list[torch.Tensor]:
        """``pl_module.<name>``'s parameters, listed once per fit (not every step)."""
        net = getattr(pl_module, name, None)
        key = (name, id(net))
        if key not in self._params:
            self._params[key] = list(net.parameters()) if isinstance(net, torch.nn.Module) else []
        return self._params[key]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._params = {}

    def _sync_due(self, trainer: L.Trainer) -> bool:
        """Steps whose state may be written or stopped on must be checked now, not later."""
        step = trainer.global_step
        if self.every_n_steps == 1 or trainer.world_size > 1 or trainer.received_sigterm:
            return True  # under DDP Lightning syncs every step anyway (SIGTERM broadcast)
        if step % self.every_n_steps == 0 or (trainer.max_steps > 0 and step >= trainer.max_steps):
            return True
        for callback in trainer.callbacks:
            every = getattr(callback, "every_n_steps", None) or getattr(
                callback, "_every_n_train_steps", None
            )
            if isinstance(every, int) and every > 0 and step % every == 0 and callback is not self:
                return True  # a checkpoint, sample grid or metric of this step
        return False

    def _bad_values(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[int, list[str]]:
        """Accumulate this step's check on the device; at sync points, the first bad step and its values.

        Between sync points nothing leaves the GPU, so the check never stalls the CUDA queue.
        """
        names, values = self._step_values(trainer, pl_module)
        if self._pending is None or self._pending.names != names:
            self._pending = _Pending(names, values)
        self._pending.add(trainer.global_step, values)
        if not self._sync_due(trainer):
            return trainer.global_step, []
        pending, self._pending = self._pending, None
        return pending.resolve()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        first_bad, bad = self._bad_values(trainer, pl_module)
        self._act(trainer, pl_module, first_bad, bad)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning writes last.ckpt at every epoch end (checkpoint callbacks run after this one),
        # including the end of a run stopped between sync points (trainer.max_time, early stopping).
        self._flush(trainer, pl_module, final=trainer.should_stop)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer, pl_module, final=True)

    def _flush(self, trainer: L.Trainer, pl_module: L.LightningModule, final: bool) -> None:
        """Read back the checks not yet read (before anything is written from this state)."""
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        first_bad, bad = pending.resolve()
        self._act(trainer, pl_module, first_bad, bad, final=final)

    def _act(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        first_bad: int,
        bad: list[str],
        final: bool = False,
    ) -> None:
        # Under DDP all ranks must take the same decision (losses are per rank; weights are in sync).
        if not trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            return
        step = trainer.global_step
        if not bad:
            bad, first_bad = ["values on another rank"], step
        what = f"non-finite {', '.join(bad)} at step {first_bad}"
        if first_bad != step:
            what += f" (found at step {step})"
        good = last_good_checkpoint(trainer)
        if self.action == "rollback" and good is not None and self.rollbacks < self.max_rollbacks:
            self.rollbacks += 1
            good_step = self._rollback(trainer, pl_module, good, what)
            after = "the run ends with that state" if final else f"training continues at step {step + 1}"
            log.warning(
                "%s: rolled back the weights and optimizer states to %s (step %d), rollback %d of %d; %s",
                what, good, good_step, self.rollbacks, self.max_rollbacks, after,
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


class _Pending:
    """Checks not yet read back: the first non-finite step and its values, kept on the device."""

    def __init__(self, names: list[str], like: torch.Tensor) -> None:
        self.names = names
        self.first_step = torch.full((), -1, dtype=torch.long, device=like.device)
        self.first_values = torch.zeros_like(like)

    def add(self, step: int, values: torch.Tensor) -> None:
        new = (self.first_step < 0) & ~torch.isfinite(values).all()
        self.first_step = torch.where(new, step, self.first_step)
        self.first_values = torch.where(new, values, self.first_values)

    def resolve(self) -> tuple[int, list[str]]:
        first = int(self.first_step)  # the one device-to-host transfer
        if first < 0:
            return first, []
        return first, [
            name if name.startswith("weights") else f"{name}={value}"
            for name, value in zip(self.names, self.first_values.cpu().tolist(), strict=True)
            if not math.isfinite(value)
        ]


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
