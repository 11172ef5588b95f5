"""Sample grids from the EMA generator on a latent batch fixed for the whole run.

Images become a grid; 2-D points (``[N, 2]``, e.g. the Gaussian-mixture benchmark) a scatter plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image, ImageDraw
from torchvision.utils import make_grid, save_image

from ganforge.images import to_unit


def scatter_image(
    points: torch.Tensor, extent: float | None = None, size: int = 512, radius: int = 2
) -> Image.Image:
    """Scatter plot of points ``[N, 2]`` on ``[-extent, extent]^2`` (``None``: fit them), drawn with PIL.

    Axes through the origin are grey; the extent is written in the corner; points outside are skipped.
    """
    pts = points.detach().float().cpu()
    pts = pts[torch.isfinite(pts).all(1)]
    if extent is None:
        extent = float(pts.abs().max()) * 1.1 if len(pts) else 1.0
        extent = max(extent, 1e-3)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    mid = (size - 1) / 2
    draw.line([(0, mid), (size - 1, mid)], fill=(200, 200, 200))
    draw.line([(mid, 0), (mid, size - 1)], fill=(200, 200, 200))
    # y grows upwards in the plot, downwards in the image
    xy = (pts * torch.tensor([1.0, -1.0]) / extent + 1) * mid
    for x, y in xy.tolist():
        if 0 <= x <= size - 1 and 0 <= y <= size - 1:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(20, 20, 120))
    draw.text((4, 4), f"[-{extent:.3g}, {extent:.3g}]^2, {len(pts)} points", fill=(0, 0, 0))
    return img


def is_points(samples: torch.Tensor) -> bool:
    return samples.ndim == 2 and samples.shape[1] == 2


class SampleGrid(L.Callback):
    """Every ``every_n_steps`` batches (and at the end), save ``samples/step_XXXXXXX.png``.

    The same latents are used each time (``GANModule.fixed_z``, saved in checkpoints), so grids from
    one run, resumed or not, can be compared image by image. Grids also go to W&B and TensorBoard.

    Args:
        every_n_steps: interval in training steps (batches).
        dirpath: output folder (default ``<trainer.default_root_dir>/samples``).
        nrow: images per grid row (``None``: the task's ``grid_columns``: one per class for conditional
            models, else 8; input | output | target for paired translation).
        g_kwargs: passed to the generator, e.g. ``{truncation_psi: 0.7}`` for StyleGAN.
        extent: for 2-D point samples, the plot shows ``[-extent, extent]^2`` (``None``: fit the points).
    """

    def __init__(
        self,
        every_n_steps: int = 500,
        dirpath: str | None = None,
        nrow: int | None = None,
        extent: float | None = None,
        g_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.every_n_steps = every_n_steps
        self.dirpath = dirpath
        self.nrow = nrow
        self.g_kwargs = dict(g_kwargs or {})
        self.extent = extent
        self.last_path: Path | None = None
        self._last_step = -1

    def _nrow(self, pl_module: Any) -> int:
        return self.nrow or pl_module.grid_columns

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
        if step == self._last_step or getattr(pl_module, "num_fixed_samples", None) == 0:
            return  # written already, or no fixed test inputs asked for (model.num_fixed_samples=0)
        self._last_step = step
        samples = pl_module.sample(**self.g_kwargs).float().cpu()
        folder = Path(self.dirpath or Path(trainer.default_root_dir) / "samples")
        folder.mkdir(parents=True, exist_ok=True)
        self.last_path = folder / f"step_{step:07d}.png"
        if is_points(samples):
            plot = scatter_image(samples, self.extent)
            plot.save(self.last_path)
            grid = torch.from_numpy(np.array(plot)).permute(2, 0, 1).float().div(255)
        else:
            grid = make_grid(to_unit(samples), nrow=self._nrow(pl_module), padding=2, pad_value=1.0)
            save_image(grid, self.last_path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="samples", images=[grid], step=step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid, global_step=step)
