"""Sample grids from the EMA generator on a latent batch fixed for the whole run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image


class SampleGrid(L.Callback):
    """Every ``every_n_steps`` batches (and at the end), save ``samples/step_XXXXXXX.png``.

    The same latents are used each time (``GANModule.fixed_z``, saved in checkpoints), so grids from
    one run, resumed or not, can be compared image by image. Grids also go to W&B and TensorBoard.

    Args:
        every_n_steps: interval in training steps (batches).
        dirpath: output folder (default ``<trainer.default_root_dir>/samples``).
        nrow: images per grid row.
    """

    def __init__(self, every_n_steps: int = 500, dirpath: str | None = None, nrow: int = 8) -> None:
        self.every_n_steps = every_n_steps
        self.dirpath = dirpath
        self.nrow = nrow
        self.last_path: Path | None = None
        self._last_step = -1

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int
    ) -> None:
        if self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self._write(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._write(trainer, pl_module)

    @rank_zero_only
    def _write(self, trainer: L.Trainer, pl_module: Any) -> None:
        step = trainer.global_step
        if step == self._last_step:
            return
        self._last_step = step
        images = pl_module.sample().float().clamp(-1, 1).add(1).div(2).cpu()
        grid = make_grid(images, nrow=self.nrow, padding=2, pad_value=1.0)
        folder = Path(self.dirpath or Path(trainer.default_root_dir) / "samples")
        folder.mkdir(parents=True, exist_ok=True)
        self.last_path = folder / f"step_{step:07d}.png"
        save_image(grid, self.last_path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="samples", images=[grid], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid, global_step=step)
