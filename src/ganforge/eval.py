"""Evaluate a checkpoint: ``python eval.py ckpt_path=... metrics=[fid,kid,is] num_samples=50000``.

Writes ``metrics.json`` with the results and the protocol (extractor and weights, sample counts,
reference dataset/split/resolution, resize, KID subsets, seed; for paired data also PSNR/SSIM's
``crop_border`` and ``test_y_channel``) so numbers can be compared honestly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ganforge.callbacks.metrics import reference_key
from ganforge.checkpoint import generator_from_checkpoint, load_checkpoint, run_config
from ganforge.metrics.evaluate import (
    check_feature_tile,
    check_image_protocol,
    check_metrics,
    evaluate_on_data,
)
from ganforge.metrics.extractors import build_extractor
from ganforge.train import CONFIG_DIR
from ganforge.utils import atomic_write, instantiate, pick_device, run_cli

log = logging.getLogger("ganforge")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Load the checkpoint, rebuild its data and EMA generator, score, write JSON; return it."""
    metrics = check_metrics(cfg.metrics, kind=None)
    crop_border, test_y_channel = cfg.get("crop_border"), cfg.get("test_y_channel")
    check_image_protocol(crop_border, test_y_channel)
    feature_tile = check_feature_tile(cfg.get("feature_tile", 128))
    ckpt = load_checkpoint(cfg.ckpt_path)
    run_cfg = run_config(ckpt)
    device = pick_device(str(cfg.device))
    extractor = build_extractor(cfg.extractor, weights=cfg.weights, device=device, precision=cfg.precision)
    check_metrics(metrics, extractor, kind=None)  # IS needs logits: before the data is read

    data_cfg = OmegaConf.merge(run_cfg.data, cfg.get("data") or {})
    datamodule = instantiate(data_cfg)
    datamodule.setup("fit")
    check_metrics(metrics, extractor, kind=getattr(datamodule, "kind", "images"))
    generator = generator_from_checkpoint(ckpt).to(device)

    out = evaluate_on_data(
        generator,
        datamodule,
        extractor,
        metrics,
        num_samples=cfg.num_samples,
        num_real=cfg.num_real,
        cache_dir=cfg.cache_dir,
        reference=reference_key(datamodule),
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        kid_subsets=cfg.kid_subsets,
        kid_subset_size=cfg.kid_subset_size,
        crop_border=crop_border,
        test_y_channel=test_y_channel,
        feature_tile=feature_tile,
    )
    report = {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "global_step": ckpt.get("global_step"),
        "generator": "EMA",
        **out,
        "device": str(device),
    }
    path = Path(cfg.output)
    with atomic_write(path, "w") as f:
        f.write(json.dumps(report, indent=2))
    log.info("%s -> %s", out["results"], path)
    print(json.dumps(out["results"]))
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    run_cli(evaluate, cfg)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
