"""The loss ablation of the Pix2Pix paper (Isola et al. 2017, Table 1) on a paired dataset.

Three objectives trained with the same budget and seeds: ``l1`` (L1 alone, the blurry "safe" answer),
``cgan`` (the conditional GAN alone) and ``l1+cgan`` (the paper's objective, L1 x 100). Each run is
scored on the held-out test pairs: FID and KID of G(test inputs) against the test targets (Inception
features), PSNR, SSIM and L1 against each output's own target. Mean ± standard error over seeds::

    python -m ganforge.benchmarks.pix2pix_ablation --data-path emoji64-google-twitter.zip --seeds 3 \
        --steps 1500 --out outputs/pix2pix_ablation
    python -m ganforge.benchmarks.pix2pix_ablation --summarize outputs/pix2pix_ablation   # table again

Every run writes ``<out>/<setting>/seed<N>/result.json`` when it ends, so seeds can run in separate
processes (``--first-seed``) and ``--summarize`` gathers whatever has finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganforge.benchmarks.runs import compose_run, gather, run_grid, train_to_end
from ganforge.benchmarks.stats import json_safe, plus_minus, summarize

SETTINGS: dict[str, list[str]] = {
    "l1": ["model.adversarial_weight=0"],
    "cgan": ["~model.content.l1"],
    "l1+cgan": [],
}
METRICS = ("fid", "kid", "psnr", "ssim", "l1")


def run_once(
    setting: str,
    seed: int,
    out: Path,
    experiment: str,
    data_path: str | None,
    steps: int,
    overrides: Sequence[str],
) -> dict[str, Any]:
    """Train one setting for one seed, score it on the test pairs, write ``result.json``."""
    from ganforge.metrics.evaluate import evaluate_translation
    from ganforge.metrics.extractors import build_extractor

    cfg = compose_run(experiment, data_path, steps, seed, out, [*SETTINGS[setting], *overrides])
    start = time.perf_counter()
    result = train_to_end(cfg)
    seconds = time.perf_counter() - start
    module, datamodule = result["model"], result["datamodule"]
    inputs, targets = datamodule.test_pairs()
    module.G_ema.eval()  # dropout off, batch norm with running statistics
    extractor = build_extractor("inception", device=module.device)
    scored = evaluate_translation(module.G_ema, inputs, targets, extractor, METRICS, batch_size=50)
    run = {
        "setting": setting,
        "seed": seed,
        "steps": int(result["trainer"].global_step),
        "train_seconds": seconds,
        **scored["results"],
        "protocol": scored["protocol"],
    }
    (out / "result.json").write_text(json.dumps(json_safe(run), indent=2))
    return run


def format_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "| objective | seeds | steps | FID | KID | PSNR (dB) | SSIM | L1 | train s / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, group in runs.items():
        s = summarize(group, (*METRICS, "train_seconds"))
        lines.append(
            f"| {name} | {len(group)} | {group[0]['steps']} | {plus_minus(s['fid'], '.1f')} | "
            f"{plus_minus(s['kid'], '.4f')} | {plus_minus(s['psnr'], '.2f')} | "
            f"{plus_minus(s['ssim'], '.4f')} | {plus_minus(s['l1'], '.4f')} | "
            f"{s['train_seconds']['mean']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganforge.benchmarks.pix2pix_ablation",
        description="Pix2Pix's loss ablation (L1, cGAN, L1+cGAN) with FID/KID/PSNR/SSIM on the test pairs.",
    )
    parser.add_argument("--experiment", default="emoji_pix2pix")
    parser.add_argument("--data-path", default=None, help="data.path of the experiment's dataset")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("outputs/pix2pix_ablation"))
    parser.add_argument("--summarize", type=Path, default=None, help="print the table of finished runs")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for every run")
    args = parser.parse_args(argv)
    if args.summarize is not None:
        print(format_table(gather(args.summarize, SETTINGS)))
        return 0

    def run_one(name: str, seed: int, out: Path) -> dict[str, Any]:
        return run_once(name, seed, out, args.experiment, args.data_path, args.steps, args.overrides)

    def describe(run: dict[str, Any]) -> str:
        return (
            f"FID {run['fid']:.1f}, KID {run['kid']:.4f}, PSNR {run['psnr']:.2f}, SSIM {run['ssim']:.4f}, "
            f"L1 {run['l1']:.4f} ({run['train_seconds']:.0f} s)"
        )

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    status = run_grid(args.settings, seeds, args.out, args.threads, run_one, describe)
    if status:
        return status
    print(format_table(gather(args.out, SETTINGS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
