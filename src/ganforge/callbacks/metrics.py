"""FID / KID / Inception Score of the EMA generator during training."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from ganforge.metrics.evaluate import (
    check_feature_tile,
    check_ground_truth,
    check_image_protocol,
    check_metrics,
    evaluate_on_data,
)
from ganforge.metrics.extractors import FeatureExtractor, build_extractor, check_precision
from ganforge.rng import preserved_rng

log = logging.getLogger("ganforge")
CONFIG_PREFIX = "callbacks.metrics."  # this callback's options in train.py's config, for error messages


class GenerativeMetrics(L.Callback):
    """Every ``every_n_steps`` steps and at the end of training, score the EMA generator.

    Values go to every logger as ``metrics/<name>`` (``metrics/fid``, ``metrics/kid``, ``metrics/is``;
    ``metrics/precision`` and ``metrics/recall`` for ``prc``; for unpaired translation also per direction,
    ``metrics/fid_ab``, ``metrics/fid_ba``, ..., where ``metrics/fid`` is ``fid_ab``), FID, KID and IS also as
    ``metrics/<name>_best``, and into ``trainer.callback_metrics`` so that
    ``ModelCheckpoint(monitor="metrics/fid", mode="min")`` keeps the best generator. Real features
    are computed once per (dataset, split, resolution, count, extractor) and cached on disk.

    Args:
        metrics: any of ``fid``, ``kid``, ``is``, ``prc`` (improved precision/recall).
        every_n_steps: interval in training steps (0 = only at the end).
        num_samples: generated images per evaluation (e.g. 10000 for FID-10k, 50000 for FID-50k).
        num_real: real images for the reference statistics (default: ``num_samples``).
        extractor: ``inception`` (torch-fidelity's inception-v3-compat), ``domain`` or ``tiny``.
        weights: weights file for the extractor (see ``ganforge.metrics.extractors``).
        precision: ``exact`` (IEEE fp32 on CUDA, the published protocol) or ``tf32`` (faster).
        cache_dir: where reference features are cached.
        batch_size: generation/extraction batch size.
        seed: seed of the evaluation latents (separate from training randomness).
        crop_border: paired data: pixels cropped at each edge before PSNR/SSIM; ``None`` = the data's
            default (its ``scale`` for super-resolution data, else 0), ``"scale"`` = the data's scale.
        test_y_channel: paired data: PSNR/SSIM on the BT.601 Y channel; ``None`` = true for
            super-resolution data, else false. Both conventions are logged with the values
            (``metrics/protocol/crop_border``, ``metrics/protocol/test_y_channel`` as 0/1) and kept
            in ``history``.
        feature_tile: test images of varying sizes (super-resolution): FID/KID of the outputs' and
            targets' non-overlapping crops of this many pixels (>= 16).
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("fid", "kid"),
        every_n_steps: int = 5000,
        num_samples: int = 10000,
        num_real: int | None = None,
        extractor: str = "inception",
        weights: str | None = None,
        precision: str = "exact",
        cache_dir: str = "outputs/cache/reference",
        batch_size: int = 250,
        seed: int = 0,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        crop_border: int | str | None = None,
        test_y_channel: bool | None = None,
        feature_tile: int = 128,
    ) -> None:
        self.metrics = check_metrics(metrics, kind=None)  # against the data's kind in setup
        check_precision(precision)
        check_image_protocol(crop_border, test_y_channel)
        self.crop_border, self.test_y_channel = crop_border, test_y_channel
        self.feature_tile = check_feature_tile(feature_tile)
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self.num_real = num_real
        self.extractor_kind = extractor
        self.weights = weights
        self.precision = precision
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.seed = seed
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.extractor: FeatureExtractor | None = None
        self.best: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self._last_step = -1

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        # Build and check the extractor before the first training step (clear errors early).
        if self.extractor is None:
            self.extractor = build_extractor(
                self.extractor_kind,
                weights=self.weights,
                precision=self.precision,
                config_prefix=CONFIG_PREFIX,
            )
            check_metrics(self.metrics, self.extractor, kind=getattr(trainer.datamodule, "kind", "images"))
            check_ground_truth(self.metrics, trainer.datamodule)  # unpaired data: PSNR needs ground truth
            log.info(
                "Metrics %s with extractor %s (%s)",
                self.metrics,
                self.extractor.name,
                self.extractor.weights_source,
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int
    ) -> None:
        if self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: L.Trainer, pl_module: Any) -> dict[str, float]:
        step = trainer.global_step
        if step == self._last_step or self.extractor is None:
            return {}
        self._last_step = step
        datamodule = trainer.datamodule
        self.extractor.to(pl_module.device)
        with preserved_rng():  # evaluation must not shift the training trajectory
            out = self._run(trainer, pl_module, datamodule)
        values = {}
        final = pl_module.scores_final() if hasattr(pl_module, "scores_final") else True
        resolution = self._resolution(pl_module)
        if resolution is not None:
            values["metrics/resolution"] = float(resolution)
        for name, value in out["results"].items():
            if not final:  # a growing model: its scores say at which resolution, and are never the best
                values[f"metrics/{name}_{resolution}px"] = value
                continue
            values[f"metrics/{name}"] = value
            if name in ("fid", "kid", "is"):
                better = max if name == "is" else min
                self.best[name] = better(self.best.get(name, value), value)
                values[f"metrics/{name}_best"] = self.best[name]
        protocol = {k: out["protocol"][k] for k in ("crop_border", "test_y_channel") if k in out["protocol"]}
        for key, value in protocol.items():  # the PSNR/SSIM conventions of paired data, beside the values
            values[f"metrics/protocol/{key}"] = float(value)
        for key, value in values.items():
            trainer.callback_metrics[key] = torch.tensor(value)
        for logger in trainer.loggers:
            logger.log_metrics(values, step=step)
            logger.save()
        at = {"resolution": resolution} if resolution is not None else {}
        self.history.append(
            {"step": step, **at, **out["results"], **({"protocol": protocol} if protocol else {})}
        )
        scores = ", ".join(f"{k}={v:.6g}" for k, v in out["results"].items())
        conventions = "".join(f", {k}={v}" for k, v in protocol.items())
        if resolution is not None:
            conventions += f", at {resolution} px" + ("" if final else " (growing: not the final model)")
        log.info("step %d, %d samples: %s%s", step, out["protocol"]["num_samples"], scores, conventions)
        return values

    @staticmethod
    def _resolution(pl_module: Any) -> int | None:
        """The resolution a growing model makes now (``None``: the data's, as for every other model)."""
        scored = pl_module.scored_resolution() if hasattr(pl_module, "scored_resolution") else None
        return None if scored is None else int(scored)

    def _run(self, trainer: L.Trainer, pl_module: Any, datamodule: Any) -> dict[str, Any]:
        generator = pl_module.ema_generator() if hasattr(pl_module, "ema_generator") else pl_module.G_ema
        resolution = self._resolution(pl_module)
        reference = reference_key(datamodule)
        if resolution is not None and resolution != datamodule.resolution:
            reference["scored_resolution"] = resolution
        return evaluate_on_data(
            generator,
            datamodule,
            self.extractor,
            self.metrics,
            num_samples=self.num_samples,
            num_real=self.num_real,
            cache_dir=self.cache_dir,
            reference=reference,
            batch_size=self.batch_size,
            seed=self.seed,
            kid_subsets=self.kid_subsets,
            kid_subset_size=self.kid_subset_size,
            world_size=trainer.world_size,
            rank=trainer.global_rank,
            crop_border=self.crop_border,
            test_y_channel=self.test_y_channel,
            feature_tile=self.feature_tile,
            real_resolution=resolution,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best), "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = dict(state.get("best", {}))
        self.history = list(state.get("history", []))


def reference_key(datamodule: Any) -> dict[str, Any]:
    """What identifies the real images the generator is compared with."""
    return {
        "dataset": datamodule.name,
        "source": str(getattr(datamodule, "path", None) or getattr(datamodule, "root", "")),
        "split": getattr(datamodule, "split", None),
        "subdir": getattr(datamodule, "subdir", None),
        "resolution": datamodule.resolution,
        "channels": datamodule.channels,
        "max_samples": datamodule.max_samples,
    }
