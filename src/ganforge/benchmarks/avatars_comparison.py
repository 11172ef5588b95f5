"""ProGAN against DCGAN and StyleGAN-lite on the offline cartoon faces, for the same wall-clock time.

Each model trains its CPU-sized experiment (``experiment=avatars_progan``, ``avatars_dcgan``,
``avatars_stylegan_lite``: 64 px, widths of 64 channels at 16 px and below, 16 at 64 px) for ``--minutes`` of
training (``trainer.max_time``: set-up and scoring not counted) with each of ``--seeds`` seeds, then its EMA
generator is scored: FID and KID of ``--num-samples`` generated faces against as many real ones (Inception
features, offline weights), at the resolution it makes when time is up (ProGAN must have finished growing:
the table says if it had not). A grid of 32 samples per run is written beside its ``result.json``; "run s" is
the whole run, set-up (and rendering the faces the first time) included.
Mean ± standard error over seeds, in ``<out>/results.md`` and ``<out>/results.json``::

    python -m ganforge.benchmarks.avatars_comparison --threads 1 --minutes 10 --seeds 3 \\
        --out outputs/avatars_comparison
    python -m ganforge.benchmarks.avatars_comparison --summarize outputs/avatars_comparison   # table again

Runs can be split over processes (``--models``, ``--first-seed``); ``--summarize`` gathers what has finished.
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

MODELS = {"progan": "avatars_progan", "dcgan": "avatars_dcgan", "stylegan_lite": "avatars_stylegan_lite"}
KEYS = ("fid", "kid", "steps", "kimg", "train_seconds")


def images_seen(module: Any, steps: int, batch_size: int) -> int:
    """Training images one process consumed: ProGAN's schedule says, the others ``steps * batch_size``."""
    schedule = getattr(module, "schedule", None)
    return schedule.images_before(steps) if schedule is not None else steps * batch_size


def run_once(name: str, seed: int, out: Path, args: argparse.Namespace, extractor: Any) -> dict[str, Any]:
    """Train ``name`` for ``args.minutes`` with ``seed``, score it, save a sample grid and ``result.json``."""
    from torchvision.utils import save_image

    from ganforge.callbacks.metrics import reference_key
    from ganforge.images import to_unit
    from ganforge.metrics.evaluate import evaluate_generator

    seconds = round(args.minutes * 60)
    budget = f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}"
    cfg = compose_run(MODELS[name], None, 10**7, seed, out, [budget, *args.overrides])
    start = time.perf_counter()
    result = train_to_end(cfg)
    train_seconds = time.perf_counter() - start
    module, datamodule = result["model"], result["datamodule"]
    steps = int(result["trainer"].global_step)
    generator = module.ema_generator()
    resolution = module.scored_resolution() or datamodule.resolution
    scored = evaluate_generator(
        generator,
        datamodule.dataset,
        extractor,
        ["fid", "kid"],
        num_samples=args.num_samples,
        num_real=args.num_samples,
        cache_dir=args.out / "cache",
        reference=reference_key(datamodule),
        batch_size=100,
    )
    save_image(to_unit(module.sample()[:32]), out / "samples.png", nrow=8, padding=1)
    run = {
        "setting": name,
        "seed": seed,
        "steps": steps,
        "kimg": images_seen(module, steps, datamodule.batch_size) / 1000,
        "train_seconds": train_seconds,
        "resolution": int(resolution),
        "finished_growing": module.scores_final(),
        "fid": scored["results"]["fid"],
        "kid": scored["results"]["kid"],
        "g_params": sum(p.numel() for p in module.G.parameters()),
        "d_params": sum(p.numel() for p in module.D.parameters()),
        "overrides": [budget, *args.overrides],
        "protocol": scored["protocol"],
    }
    (out / "result.json").write_text(json.dumps(json_safe(run), indent=2))
    return run


def format_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "| model | seeds | G / D params | FID | KID | steps | images (k) | scored at | run s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, group in runs.items():
        s = summarize(group, KEYS)
        sizes = f"{group[0]['g_params'] / 1e3:.0f}k / {group[0]['d_params'] / 1e3:.0f}k"
        at = sorted(
            {f"{r['resolution']} px" + ("" if r["finished_growing"] else " (growing)") for r in group}
        )
        lines.append(
            f"| {name} | {len(group)} | {sizes} | {plus_minus(s['fid'], '.1f')} | "
            f"{plus_minus(s['kid'], '.4f')} | {s['steps']['mean']:.0f} | {s['kimg']['mean']:.1f} | "
            f"{', '.join(at)} | {s['train_seconds']['mean']:.0f} |"
        )
    return "\n".join(lines)


def write_results(root: Path) -> str:
    runs = gather(root, MODELS)
    table = format_table(runs)
    note = (
        "FID/KID of the EMA generator's samples against as many real faces (Inception features), mean ± "
        "standard error over seeds, each model trained for the same wall-clock time."
    )
    (root / "results.md").write_text(f"{table}\n\n{note}\n")
    (root / "results.json").write_text(json.dumps(json_safe(runs), indent=2))
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganforge.benchmarks.avatars_comparison",
        description="ProGAN, DCGAN and StyleGAN-lite on data=avatars (64 px) for the same training time: "
        "FID/KID of each and a sample grid.",
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per run")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--extractor", default="inception", help="feature network of FID/KID")
    parser.add_argument("--num-samples", type=int, default=5000, help="generated and real images (FID-5k)")
    parser.add_argument("--out", type=Path, default=Path("outputs/avatars_comparison"))
    parser.add_argument("--summarize", type=Path, default=None, help="print the table of finished runs")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for every run")
    args = parser.parse_args(argv)
    if args.summarize is not None:
        print(write_results(args.summarize))
        return 0
    from ganforge.metrics.extractors import build_extractor

    extractor = None

    def run_one(name: str, seed: int, out: Path) -> dict[str, Any]:
        nonlocal extractor
        extractor = extractor or build_extractor(args.extractor)
        return run_once(name, seed, out, args, extractor)

    def describe(run: dict[str, Any]) -> str:
        return (
            f"FID {run['fid']:.1f}, KID {run['kid']:.4f} after {run['steps']} steps ({run['kimg']:.1f}k "
            f"images, {run['resolution']} px)"
        )

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    status = run_grid(args.models, seeds, args.out, args.threads, run_one, describe)
    if status:
        return status
    print(write_results(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
