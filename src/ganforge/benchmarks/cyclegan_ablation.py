"""The loss ablation of the CycleGAN paper (Zhu et al. 2017, Table 4) on unpaired emoji styles, and the
"do nothing" baseline.

Three objectives trained with the same budget and seeds on ``experiment=emoji_cyclegan_unet`` (Google <->
Twitter emoji, 64 px, never a pair seen in training; U-Net generators sized for a CPU): ``gan`` (the two GANs
alone: ``model.cycle_weight=0``, ``model.identity_weight=0``), ``gan_cycle`` (+ the cycle loss x 10, no
identity loss) and ``gan_cycle_identity`` (+ the identity loss x 0.5 x 10: the experiment as it is). Each run
is scored at its end on the held-out test sets with the EMA side in eval mode: FID and KID of ``G_AB(test A)``
against test B and of ``G_BA(test B)`` against test A (Inception features), and PSNR, SSIM and L1 of every
output against its unseen ground truth (the same emoji in the other style). The ``do_nothing`` row scores the
identity map (``Unchanged``) on the same test images once: FID(test A, test B), PSNR(test A, its Twitter
twin), ...; the ``same_style`` row scores real training images of the target style as if they were the
outputs (FID/KID only): the best a translator can reach with test sets this small, since FID of a few hundred
images is biased high. Mean ± standard error over seeds, written to ``<out>/results.md`` and
``<out>/results.json``; ``--references`` scores the two reference rows alone, without training.

Budget: 6,000 steps of batch 1: ~0.1 s a step of the full objective on one CPU thread (585 s a run, set-up
included; the GAN alone 347 s), then ~1-4 minutes of Inception scoring per run.
``scripts/cyclegan_ablation.sh`` runs the grid as two processes pinned to the two cores of a small machine
(52 minutes at 36c45c2)::

    python -m ganforge.benchmarks.cyclegan_ablation --data-path emoji64-google-twitter.zip --threads 1 \
        --settings gan_cycle_identity --seeds 3 --steps 6000 --out outputs/cyclegan_ablation
    python -m ganforge.benchmarks.cyclegan_ablation --summarize outputs/cyclegan_ablation   # the table

``--experiment emoji_cyclegan`` runs the same grid with the paper's 6-block ResNet generators (a step ~2x
dearer, and far slower to leave the blurry start: README, CycleGAN).

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
    "gan": ["model.cycle_weight=0", "model.identity_weight=0"],
    "gan_cycle": ["model.identity_weight=0"],
    "gan_cycle_identity": [],
}
BASELINE = "do_nothing"
SAME_STYLE = "same_style"
METRICS = ("fid", "kid", "psnr", "ssim", "l1")
#: every value of a row: each metric in both directions
KEYS = tuple(f"{m}_{d}" for m in METRICS for d in ("ab", "ba"))


def score(generators: Any, datamodule: Any, extractor: Any, num_samples: int | None) -> dict[str, Any]:
    """``evaluate_on_data`` of an unpaired G side (``{"AB", "BA"}``) on the data's test sets."""
    from ganforge.metrics.evaluate import evaluate_on_data

    return evaluate_on_data(
        generators, datamodule, extractor, METRICS, num_samples, num_real=None, cache_dir="unused",
        reference={}, batch_size=50,
    )  # fmt: skip


def run_once(
    setting: str, seed: int, out: Path, args: argparse.Namespace, extractor: Any
) -> tuple[dict[str, Any], Any]:
    """Train one setting for one seed, score it on the test sets, write ``result.json``; the run and its
    datamodule."""

    overrides = [*SETTINGS[setting], *args.overrides]
    cfg = compose_run(args.experiment, args.data_path, args.steps, seed, out, overrides)
    start = time.perf_counter()
    result = train_to_end(cfg)
    seconds = time.perf_counter() - start
    module, datamodule = result["model"], result["datamodule"]
    module.G_ema.eval()  # as the metrics callback, eval.py and translate.py use it
    scored = score(module.G_ema, datamodule, extractor, args.num_samples)
    steps = int(result["trainer"].global_step)
    run = {
        "setting": setting,
        "seed": seed,
        "steps": steps,
        "train_seconds": seconds,
        "seconds_per_step": seconds / max(steps, 1),  # set-up included
        **{k: scored["results"][k] for k in KEYS},
        "overrides": overrides,
        "protocol": scored["protocol"],
    }
    (out / "result.json").write_text(json.dumps(json_safe(run), indent=2))
    return run, datamodule


def _save_row(out: Path, row: dict[str, Any]) -> dict[str, Any]:
    path = out / row["setting"] / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(row), indent=2))
    return row


def run_baseline(out: Path, datamodule: Any, extractor: Any, num_samples: int | None) -> dict[str, Any]:
    """The identity map scored as the trained runs are, on the same test images: ``<out>/do_nothing/``."""
    from torch import nn

    from ganforge.metrics.evaluate import Unchanged

    scored = score(nn.ModuleDict({"AB": Unchanged(), "BA": Unchanged()}), datamodule, extractor, num_samples)
    return _save_row(
        out, {"setting": BASELINE, **{k: scored["results"][k] for k in KEYS}, "protocol": scored["protocol"]}
    )


def run_same_style(out: Path, datamodule: Any, extractor: Any, num_samples: int | None) -> dict[str, Any]:
    """Real images of the target style scored as a translator's outputs: a seeded draw of training B (as
    many as the test A images) against test B in the A→B columns, of training A against test A in the B→A
    ones (FID/KID only: they have no twin). This, not 0, is the best a translator can score: FID of a few
    hundred images against a few hundred others is biased high. ``<out>/same_style/``."""
    from ganforge.metrics.evaluate import Unchanged, evaluate_translation

    test_a, test_b = datamodule.test_sets(num_samples)
    row: dict[str, Any] = {"setting": SAME_STYLE}
    for key, side, n, reals in (("ab", "b", len(test_a), test_b), ("ba", "a", len(test_b), test_a)):
        drawn = datamodule.train_draw(side, n)
        found = evaluate_translation(
            Unchanged(), drawn, None, extractor, ["fid", "kid"], 50, feature_targets=reals
        )
        row.update({f"{m}_{key}": found["results"].get(m) for m in METRICS})
        row[f"num_drawn_{key}"] = len(drawn)
    return _save_row(out, row)


#: the table's reference rows, results key -> (folder, what it scores, scorer)
REFERENCES = {
    "baseline": (BASELINE, "identity map", run_baseline),
    "same_style": (SAME_STYLE, "real training images of the target style", run_same_style),
}


def score_references(out: Path, datamodule: Any, extractor: Any, num_samples: int | None) -> None:
    """The reference rows, each once per output folder, on the runs' test images."""
    for name, _, scorer in REFERENCES.values():
        if not (out / name / "result.json").is_file():
            row = scorer(out, datamodule, extractor, num_samples)
            print(f"{name:18s}: FID A→B {row['fid_ab']:.1f}, B→A {row['fid_ba']:.1f}", flush=True)


def collect(root: Path) -> dict[str, Any]:
    """The finished runs under ``root`` by setting, their mean ± sem, and the reference rows (if scored)."""
    runs = gather(root, SETTINGS)
    rows = {key: root / name / "result.json" for key, (name, *_) in REFERENCES.items()}
    return {
        **{key: json.loads(path.read_text()) if path.is_file() else None for key, path in rows.items()},
        "settings": {
            name: {"summary": summarize(group, (*KEYS, "train_seconds")), "runs": group}
            for name, group in runs.items()
        },
    }


def _cell(value: Any, fmt: str) -> str:
    """A value as the table shows it: ``-`` where a row has none (the same-style row's image metrics)."""
    return "-" if value is None else value if isinstance(value, str) else format(value, fmt)


def _cells(values: dict[str, Any], fmt: dict[str, str]) -> str:
    return " | ".join(_cell(values.get(k), fmt[k]) for k in KEYS)


def format_table(results: dict[str, Any]) -> str:
    fmt = {k: {"fid": ".1f", "kid": ".4f", "psnr": ".2f", "ssim": ".4f", "l1": ".4f"}[k[:-3]] for k in KEYS}
    heads = {"fid": "FID", "kid": "KID", "psnr": "PSNR (dB)", "ssim": "SSIM", "l1": "L1"}
    columns = " | ".join(f"{heads[k[:-3]]} {'A→B' if k.endswith('ab') else 'B→A'}" for k in KEYS)
    lines = [
        f"| objective | seeds | steps | {columns} | train s / run |",
        "|---|---|---|" + "---|" * len(KEYS) + "---|",
    ]
    for key, (name, what, _) in REFERENCES.items():
        row = results.get(key)
        if row is not None:
            lines.append(f"| {name} ({what}) | - | - | {_cells(row, fmt)} | - |")
    for name, entry in results["settings"].items():
        s, group = entry["summary"], entry["runs"]
        cells = _cells({k: plus_minus(s[k], fmt[k]) for k in KEYS}, fmt)
        lines.append(
            f"| {name} | {len(group)} | {group[0]['steps']} | {cells} | {s['train_seconds']['mean']:.0f} |"
        )
    return "\n".join(lines)


def write_results(root: Path) -> str:
    """``<root>/results.md`` (the table) and ``<root>/results.json`` (every run, the summaries, the
    baseline); returns the table."""
    results = collect(root)
    table = format_table(results)
    root.mkdir(parents=True, exist_ok=True)
    note = (
        "FID/KID: G_AB(test A) vs test B (A→B), G_BA(test B) vs test A (B→A); PSNR/SSIM/L1: each output vs "
        "its ground truth (the same emoji in the other style). Mean ± standard error over seeds."
    )
    (root / "results.md").write_text(f"{table}\n\n{note}\n")
    (root / "results.json").write_text(json.dumps(json_safe(results), indent=2))
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganforge.benchmarks.cyclegan_ablation",
        description="CycleGAN's loss ablation (GAN, GAN + cycle, GAN + cycle + identity) and the do-nothing "
        "baseline with FID/KID both ways and PSNR/SSIM/L1 against the unseen ground truth.",
    )
    parser.add_argument("--experiment", default="emoji_cyclegan_unet")
    parser.add_argument("--data-path", default=None, help="data.path of the experiment's dataset")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--extractor", default="inception", help="feature network of FID/KID")
    parser.add_argument("--num-samples", type=int, default=None, help="test images per domain (all)")
    parser.add_argument("--out", type=Path, default=Path("outputs/cyclegan_ablation"))
    parser.add_argument("--summarize", type=Path, default=None, help="print the table of finished runs")
    parser.add_argument(
        "--references",
        action="store_true",
        help="score only the do-nothing and same-style rows (no training)",
    )
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for every run")
    args = parser.parse_args(argv)
    if args.summarize is not None:
        print(write_results(args.summarize))
        return 0
    from ganforge.metrics.extractors import build_extractor

    if args.references:
        from hydra.utils import instantiate

        cfg = compose_run(
            args.experiment, args.data_path, args.steps, args.first_seed, args.out, args.overrides
        )
        score_references(args.out, instantiate(cfg.data), build_extractor(args.extractor), args.num_samples)
        print(write_results(args.out))
        return 0
    extractor = None

    def run_one(name: str, seed: int, out: Path) -> dict[str, Any]:
        nonlocal extractor
        extractor = extractor or build_extractor(args.extractor)
        run, datamodule = run_once(name, seed, out, args, extractor)
        score_references(args.out, datamodule, extractor, args.num_samples)
        return run

    def describe(run: dict[str, Any]) -> str:
        return (
            f"FID A→B {run['fid_ab']:.1f}, B→A {run['fid_ba']:.1f}, PSNR A→B {run['psnr_ab']:.2f}, "
            f"B→A {run['psnr_ba']:.2f} ({run['train_seconds']:.0f} s)"
        )

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    status = run_grid(args.settings, seeds, args.out, args.threads, run_one, describe)
    if status:
        return status
    print(write_results(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
