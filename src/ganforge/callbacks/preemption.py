"""SIGTERM (preemption) handling that is safe for data-parallel jobs.

Lightning's own SIGTERM handler runs a collective broadcast inside the signal handler. When a job
scheduler signals every process (SLURM, ``kill -- -PGID``), and Lightning's launcher forwards the
signal to the worker ranks again, those handler broadcasts can pair with the training step's
gradient all-reduce on another rank and the job hangs instead of saving its checkpoint. Here the
handler only sets a flag; at the end of each step all ranks agree on it with one all-reduce, so
every rank stops after the same step and the checkpoint is written collectively.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import lightning as L

log = logging.getLogger("ganforge")


class Preemption(L.Callback):
    """Stop after the current step on SIGTERM, on every rank alike; ``Checkpoint`` then writes last.ckpt."""

    def __init__(self) -> None:
        self.requested = False
        self._forwarded = False
        self._trainer: L.Trainer | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; Lightning's stays
        self._trainer = trainer
        signal.signal(signal.SIGTERM, self._on_sigterm)  # Lightning restores the original at teardown

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        launcher = getattr(self._trainer.strategy, "launcher", None) if self._trainer else None
        if launcher is not None and not self._forwarded:
            self._forwarded = True
            launcher.kill(signum)  # rank 0 of a launched job: pass it on to the ranks it started

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        stop = self.requested
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)  # any rank signalled
        if stop and not trainer.received_sigterm:
            log.info("SIGTERM: stopping after step %d on every rank", trainer.global_step)
            # The flag Lightning's loop checks after this batch: it raises SIGTERMException on all ranks.
            trainer._signal_connector.received_sigterm = True
