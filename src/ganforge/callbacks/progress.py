"""Training progress: step, images/s, D/G losses and the last FID, in a Rich bar or plain log lines.

On a terminal this is Lightning's :class:`RichProgressBar` with GAN-specific metrics. Where stdout is
not a terminal (CI logs, ``nohup``, redirected output) a live bar would either be invisible until the
end or flood the log with carriage returns, so :class:`LogProgressBar` prints one plain line every
``every_n_steps`` steps instead. :func:`progress_bar` picks one (``mode: auto | rich | log``) and
returns a no-op callback when ``trainer.enable_progress_bar=false`` (Lightning refuses a progress bar
callback then), so the config entry never has to be removed by hand.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ProgressBar, RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import RichProgressBarTheme

from ganforge.tasks.base import LOSS_D, LOSS_G

log = logging.getLogger("ganforge")

FID_KEY = "metrics/fid"
LOSS_KEYS = {LOSS_D: "D", LOSS_G: "G"}


def images_per_second(batch_size: int, seconds: float, world_size: int = 1) -> float:
    """Images processed per second by all processes: ``batch_size * world_size / seconds`` (0 if no time)."""
    if seconds <= 0:
        return 0.0
    return batch_size * world_size / seconds


class Throughput:
    """Images/s from the batch size and the time between consecutive batch ends.

    ``smoothing`` is the weight of the newest measurement in an exponential moving average
    (1 = no smoothing). The first call only starts the clock.
    """

    def __init__(self, smoothing: float = 0.3) -> None:
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing={smoothing} must be in (0, 1]")
        self.smoothing = smoothing
        self.value: float | None = None
        self._last: float | None = None

    def reset(self, now: float | None = None) -> None:
        self._last = time.perf_counter() if now is None else now

    def update(self, batch_size: int, now: float | None = None, world_size: int = 1) -> float | None:
        now = time.perf_counter() if now is None else now
        if self._last is not None:
            rate = images_per_second(batch_size, now - self._last, world_size)
            self.value = rate if self.value is None else self.value + self.smoothing * (rate - self.value)
        self._last = now
        return self.value


def batch_size_of(batch: Any) -> int:
    """Number of samples in a batch: ``(images, labels)``, a tensor, or a dict of tensors."""
    if isinstance(batch, dict):
        batch = next(iter(batch.values()), None)
    if isinstance(batch, (list, tuple)) and batch:
        batch = batch[0]
    shape = getattr(batch, "shape", None)
    return int(shape[0]) if shape else 0


def gan_metrics(trainer: L.Trainer, throughput: Throughput) -> dict[str, int | str | float]:
    """What the bar shows: step, img/s, D and G loss, and the last FID when a metrics callback ran."""
    out: dict[str, int | str | float] = {"step": str(trainer.global_step)}
    if throughput.value is not None:
        out["img/s"] = f"{throughput.value:.1f}"
    metrics = trainer.callback_metrics
    for key, label in LOSS_KEYS.items():
        if key in metrics:
            out[label] = f"{float(metrics[key]):.3f}"
    if FID_KEY in metrics:
        out["FID"] = f"{float(metrics[FID_KEY]):.2f}"
    status = getattr(getattr(trainer, "lightning_module", None), "progress_status", None)
    if status is not None:
        out.update(status())
    return out


class GANRichProgressBar(RichProgressBar):
    """:class:`RichProgressBar` showing step, img/s, D/G losses and the last FID."""

    def __init__(
        self,
        refresh_rate: int = 1,
        leave: bool = False,
        smoothing: float = 0.3,
        every_n_steps: int = 50,
        **kwargs: Any,
    ):
        super().__init__(refresh_rate=refresh_rate, leave=leave, theme=RichProgressBarTheme(), **kwargs)
        self.throughput = Throughput(smoothing)
        # Losses reach callback_metrics every logging interval; reading them (a GPU sync) only then
        # keeps the bar from stalling the CUDA queue at every refresh.
        self.every_n_steps = max(1, int(every_n_steps))
        self._shown: dict[str, int | str | float] | None = None  # losses/FID as last read

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self.throughput.reset()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.throughput.update(batch_size_of(batch), world_size=trainer.world_size)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        step = trainer.global_step
        if self._shown is None or step % self.every_n_steps == 0 or step == trainer.max_steps:
            self._shown = gan_metrics(trainer, self.throughput)
        shown = dict(self._shown)
        shown["step"] = str(step)
        if self.throughput.value is not None:
            shown["img/s"] = f"{self.throughput.value:.1f}"
        return shown

    def _get_train_description(self, current_epoch: int) -> str:
        # Step-based GAN runs have max_epochs=-1: Lightning would print "Epoch 0/-2".
        return f"epoch {current_epoch}"


class LogProgressBar(ProgressBar):
    """Plain log lines for non-terminal output.

    Example: ``step 500/3000 | 812.3 img/s | D 0.412 | G 1.873 | FID 54.12``.
    """

    def __init__(self, every_n_steps: int = 50, smoothing: float = 0.3) -> None:
        super().__init__()
        self.every_n_steps = max(1, int(every_n_steps))
        self.throughput = Throughput(smoothing)
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.throughput._last is None:
            self.throughput.reset()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.throughput.update(batch_size_of(batch), world_size=trainer.world_size)
        step = trainer.global_step
        if (
            self._enabled
            and trainer.is_global_zero
            and (step % self.every_n_steps == 0 or step == trainer.max_steps)
        ):
            log.info(self.format_line(trainer))

    def format_line(self, trainer: L.Trainer) -> str:
        metrics = gan_metrics(trainer, self.throughput)
        total = f"/{trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else ""
        parts = [f"step {metrics.pop('step')}{total}"]
        if "img/s" in metrics:
            parts.append(f"{metrics.pop('img/s')} img/s")
        parts += [f"{k} {v}" for k, v in metrics.items()]
        return " | ".join(parts)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        return gan_metrics(trainer, self.throughput)


def progress_bar(
    enabled: bool = True,
    mode: str = "auto",
    every_n_steps: int = 50,
    refresh_rate: int = 1,
    leave: bool = False,
    smoothing: float = 0.3,
) -> Callback:
    """The progress callback for ``callbacks.progress_bar``.

    Args:
        enabled: ``${trainer.enable_progress_bar}``; ``False`` gives a no-op callback.
        mode: ``auto`` (Rich on a terminal, log lines otherwise), ``rich`` or ``log``.
        every_n_steps: interval of the log lines in ``log`` mode, and of reading losses in ``rich`` mode.
        refresh_rate, leave: passed to :class:`RichProgressBar`.
        smoothing: weight of the newest step in the img/s moving average.
    """
    if not enabled:
        return Callback()
    if mode not in ("auto", "rich", "log"):
        from ganforge.errors import ConfigError

        raise ConfigError(f"callbacks.progress_bar.mode={mode!r}: choose auto, rich or log")
    if mode == "auto":
        mode = "rich" if sys.stdout.isatty() else "log"
    if mode == "rich":
        return GANRichProgressBar(
            refresh_rate=refresh_rate, leave=leave, smoothing=smoothing, every_n_steps=every_n_steps
        )
    return LogProgressBar(every_n_steps=every_n_steps, smoothing=smoothing)
