"""Progressive growing (ProGAN, Karras et al., 2018): the noise -> image family, growing from 4x4.

Growth is a function of the step alone (``GrowthSchedule``): the level, the fade-in ``alpha``, the batch size
and the images shown so far are all computed from ``global_step``, so a run resumed from any checkpoint
(mid-fade, at a stage boundary, across a batch-size change) continues exactly as the uninterrupted run.
The datamodule draws each batch of the size the schedule gives (``ganforge.data.sampler``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.progan import at_level, num_levels
from ganforge.tasks.noise import GANModule


@dataclass(frozen=True)
class Phase:
    """A run of steps at one level: fading it in, or stable. The last phase never ends."""

    level: int
    fading: bool
    start_step: int
    steps: int | None  # None: the last, open-ended phase
    batch_size: int
    start_images: int  # images shown (per process) before its first step


@dataclass(frozen=True)
class Growth:
    """Where a run is at one step."""

    level: int
    alpha: float
    resolution: int
    batch_size: int
    images: int  # images shown (per process) before this step
    phase: int

    @property
    def fading(self) -> bool:
        return self.alpha < 1.0


class GrowthSchedule:
    """ProGAN's schedule in images shown: ``stable_images`` at 4x4, then for every higher level
    ``fade_images`` fading it in and ``stable_images`` stable; the final level stays until the run ends.

    Args:
        resolution: the target resolution, ``4 * 2**k`` px.
        stable_images, fade_images: images per stable and per fade phase (the paper: 600k and 600k). Each
            phase lasts ``ceil(images / batch size)`` steps of its level's batch size.
        batch_sizes: per-process batch size of every resolution (``{4: 64, 8: 64, ..., 64: 16}``), or one
            for all. A fade uses the batch size of the level it fades in.
        start_resolution: start at this resolution instead of 4x4 (the official ``lod_initial_resolution``);
            the target resolution trains one fixed stage (the throughput benchmark does).
    """

    def __init__(
        self,
        resolution: int,
        stable_images: int,
        fade_images: int,
        batch_sizes: int | Mapping[int, int],
        start_resolution: int | None = None,
    ) -> None:
        self.resolution = resolution
        self.max_level = num_levels(resolution)
        start = 4 if start_resolution is None else int(start_resolution)
        every = [4 * 2**level for level in range(self.max_level + 1)]
        if start not in every:
            raise ConfigError(
                f"model.growth.start_resolution={start_resolution} is not one of this run's resolutions "
                f"{every}; null starts at 4"
            )
        self.start_level = every.index(start)
        sizes = every[self.start_level :]
        if isinstance(batch_sizes, Mapping):
            given = {int(k): int(v) for k, v in batch_sizes.items()}
            missing = [r for r in sizes if r not in given]
            extra = [r for r in given if r not in every]
            if missing or extra:
                raise ConfigError(
                    f"model.growth.batch_sizes must give the batch size of every resolution {sizes}: "
                    + (f"missing {missing}" if missing else "")
                    + (", " if missing and extra else "")
                    + (f"{extra} are not resolutions of this run" if extra else "")
                    + " (or give one number for all: model.growth.batch_sizes=16)"
                )
            given = {r: given[r] for r in sizes}  # those below start_resolution are not used
        else:
            given = dict.fromkeys(sizes, int(batch_sizes))
        if any(b < 1 for b in given.values()):
            raise ConfigError(f"model.growth.batch_sizes={given}: every batch size must be >= 1")
        self.batch_sizes = given
        for key, images in (("stable_images", stable_images), ("fade_images", fade_images)):
            largest = max(given.values())
            if images < largest:
                raise ConfigError(
                    f"model.growth.{key}={images} is shorter than one step of a stage (batch size up to "
                    f"{largest}): give every stage and fade at least one batch of images, e.g. "
                    f"model.growth.{key}={largest * 100}"
                )
        self.stable_images, self.fade_images = int(stable_images), int(fade_images)
        self.phases: list[Phase] = []
        step = images = 0
        first = self.start_level
        kinds = [(first, False)] + [
            (level, fading) for level in range(first + 1, self.max_level + 1) for fading in (True, False)
        ]
        for i, (level, fading) in enumerate(kinds):
            batch = given[4 * 2**level]
            last = i == len(kinds) - 1
            steps = None if last else math.ceil((fade_images if fading else stable_images) / batch)
            self.phases.append(Phase(level, fading, step, steps, batch, images))
            if steps is not None:
                step, images = step + steps, images + steps * batch
        self._starts = [p.start_step for p in self.phases]

    @property
    def final_step(self) -> int:
        """The first step at the full resolution with nothing fading."""
        return self.phases[-1].start_step

    def phase_index(self, step: int) -> int:
        if step < 0:
            raise ValueError(f"step {step} < 0")
        return bisect.bisect_right(self._starts, step) - 1

    def at(self, step: int) -> Growth:
        """The growth state of step ``step`` (0-based: the step after ``step`` batches)."""
        i = self.phase_index(step)
        p = self.phases[i]
        k = step - p.start_step
        alpha = k / p.steps if p.fading and p.steps else 1.0
        return Growth(p.level, alpha, 4 * 2**p.level, p.batch_size, p.start_images + k * p.batch_size, i)

    def batch_size(self, step: int) -> int:
        return self.phases[self.phase_index(step)].batch_size

    def images_before(self, step: int) -> int:
        """Images one process has consumed before step ``step``: where its batch starts in the data stream."""
        return self.at(step).images

    def describe(self) -> str:
        """One line per phase: level, resolution, steps, batch size."""
        lines = []
        for p in self.phases:
            what = "fade-in" if p.fading else "stable"
            steps = "until the end" if p.steps is None else f"{p.steps} steps"
            lines.append(
                f"{4 * 2**p.level:>5} px {what:8s} from step {p.start_step}: {steps}, batch {p.batch_size}"
            )
        return "\n".join(lines)


class ProGANModule(GANModule):
    """The noise -> image family with progressive growing; see ``GANModule`` for the shared options.

    Args:
        growth: ``stable_images``, ``fade_images``, ``batch_sizes``, ``start_resolution`` (see
            ``GrowthSchedule``) and
            ``reset_optimizers``: clear both Adam states when a new level starts fading in (an option of
            the official code; off by default, as there).
        The generator and discriminator must be growing networks (``ganforge.models.progan``).
    """

    def __init__(
        self, generator: nn.Module, discriminator: nn.Module, growth: Mapping[str, Any], **kwargs: Any
    ):
        if kwargs.get("compile"):
            raise ConfigError(
                "model.compile is not supported by ProGAN: its networks change their graph at every stage "
                "and every fade step; use model.compile=false"
            )
        for name, net in (("generator", generator), ("discriminator", discriminator)):
            if not hasattr(net, "set_growth"):
                raise ConfigError(
                    f"ProGAN needs growing networks; model.{name} is {type(net).__name__}: use "
                    f"ganforge.models.progan.ProGAN{name.capitalize()}"
                )
        super().__init__(generator, discriminator, **kwargs)
        options = dict(growth)
        self.reset_optimizers = bool(options.pop("reset_optimizers", False))
        unknown = set(options) - {"stable_images", "fade_images", "batch_sizes", "start_resolution"}
        if unknown:
            raise ConfigError(
                f"model.growth has unknown keys {sorted(unknown)}: use stable_images, fade_images, "
                "batch_sizes, start_resolution, reset_optimizers"
            )
        self.schedule = GrowthSchedule(generator.resolution, **options)
        self.growth = self.schedule.at(0)
        self._apply_growth(self.growth)

    # -- growth -----------------------------------------------------------------------------------
    def _apply_growth(self, growth: Growth) -> None:
        for net in (self.G, self.G_ema, self.D):
            net.set_growth(growth.level, growth.alpha)

    def grow_to(self, step: int) -> Growth:
        """Set every network to the growth of ``step``."""
        self.growth = self.schedule.at(step)
        self._apply_growth(self.growth)
        return self.growth

    def batch_size_at(self, step: int) -> int:
        """The per-process batch size of step ``step``: the datamodule draws batches of it."""
        return self.schedule.batch_size(step)

    def images_before(self, step: int) -> int:
        return self.schedule.images_before(step)

    def scored_resolution(self) -> int:
        return self.G_ema.current_resolution

    def scores_final(self) -> bool:
        return self.G_ema.level == self.G_ema.max_level and self.G_ema.alpha == 1.0

    def progress_status(self) -> dict[str, str]:
        g = self.growth
        status = {"res": f"{g.resolution}px"}
        if g.fading:
            status["fade"] = f"{g.alpha:.0%}"
        return status

    # -- training ---------------------------------------------------------------------------------
    def check_data(self, datamodule: Any) -> None:
        super().check_data(datamodule)
        largest = max(self.schedule.batch_sizes.values())
        dataset = getattr(datamodule, "dataset", None)
        if dataset is not None and len(dataset) < largest:
            raise ConfigError(
                f"model.growth.batch_sizes asks for batches of {largest} but the data has only "
                f"{len(dataset)} images: lower the batch sizes or use more data"
            )
        group = self.D.mbstd.group_size
        uneven = {r: b for r, b in self.schedule.batch_sizes.items() if b % min(group, b)}
        if uneven:
            raise ConfigError(
                f"model.growth.batch_sizes {uneven} cannot be split into minibatch-std groups of "
                f"model.discriminator.mbstd_group_size={group}: use multiples of it"
            )
        max_steps = getattr(getattr(datamodule, "trainer", None), "max_steps", -1)
        if 0 < max_steps <= self.schedule.final_step:
            raise ConfigError(
                f"trainer.max_steps={max_steps} ends before the run reaches {self.schedule.resolution} px "
                f"(step {self.schedule.final_step}):\n{self.schedule.describe()}\nRaise trainer.max_steps or "
                "shorten model.growth.stable_images / fade_images"
            )

    def on_fit_start(self) -> None:
        self.grow_to(self.global_step)  # a resumed run: the checkpoint's step

    def training_step(self, batch: Any, batch_idx: int) -> None:
        step = self.global_step
        growth = self.grow_to(step)
        if len(batch[0]) != growth.batch_size:
            raise ConfigError(
                f"step {step} of ProGAN needs a batch of {growth.batch_size} images but got {len(batch[0])}: "
                "the datamodule must draw batch sizes from the model's schedule (GANDataModule does)"
            )
        p = self.schedule.phases[growth.phase]
        if self.reset_optimizers and p.fading and step == p.start_step:  # a new level starts fading in
            for opt in self.optimizers():
                opt.optimizer.state.clear()
        super().training_step(batch, batch_idx)

    def _finish_step(self, logs: dict[str, torch.Tensor], log_now: bool) -> None:
        if log_now:  # the growth of the step just done
            g = self.growth
            logs["growth/resolution"] = torch.tensor(float(g.resolution))
            logs["growth/alpha"] = torch.tensor(g.alpha)
            # images shown once this step is done, by all processes
            logs["growth/kimg"] = torch.tensor((g.images + g.batch_size) * self.trainer.world_size / 1000)
        super()._finish_step(logs, log_now)

    def prepare_batch(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        """Real images as D sees them at this step: pooled to the level, faded like the fakes."""
        out = super().prepare_batch(batch)
        g = self.growth
        out["real"] = self.to_layout(at_level(out["real"], g.level, g.alpha, self.schedule.max_level))
        return out
