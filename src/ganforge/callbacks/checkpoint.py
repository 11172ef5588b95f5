"""Step checkpoints plus an always-current ``last.ckpt``."""

from __future__ import annotations

import warnings
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

# Checkpoints are written after the step's updates, which is the state a resume must start from.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")


class Checkpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that also writes ``last.ckpt`` for the final step.

    Lightning only writes ``last`` at the checkpoint interval, so a run whose ``max_steps`` is not a
    multiple of it would lose its last steps; resuming from ``last.ckpt`` must give the whole run.
    """

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
