"""Step checkpoints plus an always-current ``last.ckpt``, written atomically, also on preemption."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import warnings
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ganforge.callbacks.guards import NonFiniteError
from ganforge.utils import atomic_write

log = logging.getLogger("ganforge")

# Checkpoints are written after the step's updates, which is the state a resume must start from.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")


class Checkpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that also writes ``last.ckpt`` for the final step and on preemption.

    Lightning only writes ``last`` at the checkpoint interval, so a run whose ``max_steps`` is not a
    multiple of it would lose its last steps; resuming from ``last.ckpt`` must give the whole run.

    On SIGTERM, Lightning's signal connector sets ``trainer.received_sigterm`` and its loops raise
    ``SIGTERMException`` once the current batch is finished; this callback then writes ``last.ckpt``
    with the state after that last completed step (which resumes exactly), whatever
    ``save_on_exception`` says. Other exceptions (e.g. ``NonFiniteError``) never overwrite ``last.ckpt``
    unless ``save_on_exception=true``: the state that failed is not one to resume from. The exception
    to that: an error after the last step finished (an end-of-run evaluation or upload that fails) still
    writes ``last.ckpt``, since that state is the run's result; Lightning runs checkpoint callbacks' hooks
    after all others, so without this a failing ``on_train_end`` elsewhere lost the final steps.
    """

    _step_completed = -1  # global step whose batch, and every callback's on_train_batch_end, finished

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath and os.path.isdir(self.dirpath):
            remove_stale_temporaries(self.dirpath)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # A resume into a new run folder is the usual case: Lightning warns that the old folder's
        # best/last paths are not reloaded, which ganforge does not use (save_top_k=-1, no monitor).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The dirpath has changed from")
            super().load_state_dict(state_dict)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        self._step_completed = trainer.global_step

    def _save_topk_checkpoint(self, trainer: Any, monitor_candidates: dict[str, torch.Tensor]) -> None:
        # A growing ProGAN's scores are not of the final model: the metrics callback does not report the
        # monitored key then, and there is nothing to compare yet (Lightning would warn of a missing key).
        growing = not getattr(trainer.lightning_module, "scores_final", lambda: True)()
        if growing and self.monitor is not None and self.monitor not in monitor_candidates:
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_last_if_unsaved(self, trainer: Any) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._save_last_if_unsaved(trainer)
        super().on_train_end(trainer, pl_module)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        preempted = isinstance(exception, SIGTERMException)
        # After the last step the state is the run's result, unless the guard's final read-back found it
        # diverged.
        finished = self._step_completed == trainer.global_step and _no_steps_left(trainer)
        result = self.save_last and finished and not isinstance(exception, NonFiniteError)
        if not (preempted or result):
            super().on_exception(trainer, pl_module, exception)
            return
        if result and self._last_global_step_saved != trainer.global_step:
            what = f"{type(exception).__name__}: {exception}"
            log.error(
                "training finished at step %d, then %s; writing last.ckpt of that step",
                trainer.global_step,
                what,
            )
        self._save_last_if_unsaved(trainer)


def _no_steps_left(trainer: Any) -> bool:
    """Whether the fit loop would stop here: max_steps or max_epochs reached, or a stop requested."""
    loop = trainer.fit_loop
    steps_done = loop.max_steps >= 0 and trainer.global_step >= loop.max_steps
    epochs = loop.max_epochs
    epochs_done = epochs is not None and epochs >= 0 and trainer.current_epoch >= epochs
    return steps_done or epochs_done or trainer.should_stop


def remove_stale_temporaries(folder: str) -> list[str]:
    """Delete the temporary files of saves that were killed mid-write (``.<name>.ckpt.<random>.tmp``).

    ``AtomicCheckpointIO`` removes its temporary file when a save fails, but a SIGKILL or a power loss
    during the write leaves it; the checkpoint callback clears them when a run starts in the folder.
    """
    removed = []
    for name in os.listdir(folder):
        if name.startswith(".") and name.endswith(".tmp") and ".ckpt." in name:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))
                removed.append(name)
    if removed:
        log.info("removed %d temporary file(s) of interrupted checkpoint saves in %s", len(removed), folder)
    return removed


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file in its folder, fsync it, then rename it into place.

    A crash, a kill or a full disk during a save leaves the previous file with that name intact
    (``os.replace`` is atomic on POSIX and Windows within one file system). A failed save removes its
    temporary file; one killed outright (SIGKILL, power loss) leaves ``.<name>.<random>.tmp``, which the
    next run in that folder removes (``remove_stale_temporaries``).
    Remote paths (``s3://`` ...) go through Lightning's own transactional writer. ``train.py`` uses this
    plugin unless ``trainer.plugins`` already holds a ``CheckpointIO``.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        protocol = get_filesystem(path).protocol
        local = "file" in ((protocol,) if isinstance(protocol, str) else protocol)
        if storage_options is not None or not local:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        try:
            with atomic_write(os.fspath(path)) as f:
                torch.save(checkpoint, f)
        except OSError as e:
            code = e.errno or errno.EIO
            reason = e.strerror or str(e) or type(e).__name__
            raise OSError(
                code, f"could not write checkpoint {path} ({reason}); the previous file there is unchanged"
            ) from e
