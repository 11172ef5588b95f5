"""The super-resolution table: bicubic and trained SR checkpoints scored on the same test photos.

Every row is measured with the protocol of ``eval.py`` on super-resolution data (BasicSR's): outputs
saved as ``uint8``, PSNR and SSIM on the BT.601 Y channel with ``scale`` pixels cropped at each edge,
per image then averaged; ``inception_l1``, the offline perceptual distance; KID and FID of
non-overlapping output crops (``--feature-tile``) against the same crops of the ground truth.
The bicubic row is MATLAB's ``imresize`` of the ``uint8`` LR image, as the SR papers' baselines are::

    python -m ganforge.benchmarks.sr_table --data sr_photos --data-path ../shared/datasets/sr-photos.zip \\
        --run SRResNet=outputs/.../checkpoints/last.ckpt --run SRGAN=... --out sr_table.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.benchmarks.stats import json_safe
from ganforge.checkpoint import load_checkpoint, load_generator
from ganforge.images import to_signed_unit, to_uint8
from ganforge.imresize import imresize
from ganforge.metrics.evaluate import evaluate_translation, image_protocol
from ganforge.metrics.extractors import build_inception
from ganforge.train import compose_config
from ganforge.utils import instantiate

METRICS = ("psnr", "ssim", "inception_l1", "kid", "fid")


class Bicubic(nn.Module):
    """The bicubic baseline as a generator: MATLAB ``imresize`` of the ``uint8`` LR image (``[-1, 1]`` in
    and out, so it is scored exactly as a network is)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # gives evaluate a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_signed_unit(imresize(to_uint8(x), scale=self.scale))


def score(name: str, generator: nn.Module, datamodule: Any, extractor: Any, args: Any) -> dict[str, Any]:
    inputs, targets = datamodule.test_pairs()
    options = image_protocol(datamodule)
    out = evaluate_translation(
        generator.eval(),
        inputs,
        targets,
        extractor,
        METRICS,
        image_options=options,
        feature_tile=args.feature_tile,
        kid_subset_size=args.kid_subset_size,
    )
    per_image = evaluate_translation(
        generator, inputs[:1], targets[:1], None, ["psnr"], image_options=options
    )
    out["results"][f"psnr_{datamodule.test_names[0]}"] = per_image["results"]["psnr"]
    print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in out["results"].items()), flush=True)
    return out


def markdown(rows: dict[str, dict[str, Any]], first: str) -> str:
    lines = [
        f"| method | steps | PSNR-Y (dB) | SSIM-Y | Inception-L1 | KID x1e3 | FID | PSNR-Y {first} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        r = row["results"]
        lines.append(
            f"| {name} | {row.get('steps', '-')} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
            f"{r['inception_l1']:.4f} | {1e3 * r['kid']:.1f} | {r['fid']:.1f} | {r[f'psnr_{first}']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="sr_photos", help="data config (sr_photos, set5, ...)")
    parser.add_argument("--data-path", default=None, help="data.path (default: the config's)")
    parser.add_argument("--run", action="append", default=[], help="NAME=checkpoint (repeatable)")
    parser.add_argument("--feature-tile", type=int, default=96, help="crop size for KID/FID")
    parser.add_argument("--kid-subset-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the rows")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides of the data config")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = [
        f"data={args.data}",
        *([f"data.path={args.data_path}"] if args.data_path else []),
        *args.overrides,
    ]
    datamodule = instantiate(compose_config(overrides).data)
    extractor = build_inception()
    rows: dict[str, dict[str, Any]] = {}
    rows["bicubic"] = score("bicubic", Bicubic(datamodule.scale), datamodule, extractor, args)
    for spec in args.run:
        name, _, path = spec.partition("=")
        generator, _ = load_generator(path)
        rows[name] = score(name, generator, datamodule, extractor, args)
        rows[name]["steps"] = load_checkpoint(path)["global_step"]
        rows[name]["checkpoint"] = path
    table = markdown(rows, datamodule.test_names[0])
    print(table)
    if args.out is not None:
        args.out.write_text(
            json.dumps(json_safe({"rows": rows, "test_images": datamodule.test_names}), indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
