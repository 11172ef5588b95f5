"""Mode-collapse benchmark on 2-D Gaussian mixtures (PacGAN protocol, Lin et al. 2018, Table 1).

Each setting is trained through ganforge's own ``train()`` on the composed Hydra config
(``experiment=<data>_pacgan`` plus the setting's overrides), then 2,500 points from the trained
generator are scored against the known modes:

* a sample is **high quality** when it lies within ``3 std`` of its nearest mode centre;
* a mode is **captured** when at least one high-quality sample has it as nearest mode (PacGAN's and
  VEEGAN's rule, no minimum count);
* **reverse KL** is ``KL(p || uniform)`` where ``p`` is the distribution of the high-quality samples
  over the modes (``inf`` when there are none).

Every setting runs for several seeds; the table gives mean ± standard error and a JSON keeps each run.

    python -m ganforge.benchmarks.mode_collapse --data grid25 ring8 --pack 1 2 3 4 --best --seeds 3
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from ganforge.benchmarks.stats import json_safe, plus_minus, summarize
from ganforge.errors import ConfigError, GanforgeError

NUM_SAMPLES = 2500  # generated points scored per run, as in the protocol
THRESHOLD = 3.0  # high quality: within this many standard deviations of the nearest mode
DATASETS = ("grid25", "ring8")
# The strongest built-in stabiliser found for this benchmark at CPU-minute budgets: R1 on the plain GAN
# with a two-time-scale update (TTUR: D at 4e-3, G at 5e-4, both decayed linearly to 1%). Packing slows
# down how precisely G reaches the modes; minibatch discrimination, EMA of G, RpGAN + R1/R2, LSGAN,
# Adam beta1 = 0 and top-k G updates did not help. Grid25, seed 0, 2,500 steps: R1 weight 0.5 at 1e-3
# gave 17% high quality, weight 0.05 26%, + TTUR 41% (weight 0.01: 49% but 23 modes, KL 0.85). What
# remains at short budgets is bridges of points between neighbouring modes, which shrink with more
# steps; at long budgets G's batch-norm running statistics became the limit (one 100k-step run: 63.5%
# high quality with them, 95.8% with statistics averaged over 25k latents), hence model.standing_stats
# in model=pacgan_mlp.
BEST = (
    "gan+r1+ttur",
    [
        "model.pack=1",
        "reg=r1",
        "model.regularizers.r1.weight=0.05",
        "model.regularizers.r1.interval=1",
        "model.optimizer_g.lr=5e-4",
        "model.optimizer_d.lr=4e-3",
    ],
)


@dataclass
class ModeStats:
    """Scores of one set of generated points against the mixture's modes."""

    modes: int  # modes captured
    high_quality: float  # percentage of samples within THRESHOLD std of their nearest mode
    reverse_kl: float  # KL(high-quality samples' mode distribution || uniform)
    counts: list[int]  # high-quality samples per mode


def mode_stats(
    samples: torch.Tensor, means: torch.Tensor, std: float, threshold: float = THRESHOLD
) -> ModeStats:
    """Score points ``[N, 2]`` against isotropic modes ``means [K, 2]`` of standard deviation ``std``."""
    if samples.ndim != 2 or samples.shape[1] != means.shape[1] or len(samples) == 0:
        raise ConfigError(f"expected samples [N > 0, {means.shape[1]}], got {tuple(samples.shape)}")
    samples, means = samples.double().cpu(), means.double().cpu()
    dist, nearest = torch.cdist(samples, means).min(dim=1)
    good = dist < threshold * std  # NaN / inf points are never good
    counts = torch.bincount(nearest[good], minlength=len(means))
    n_good = int(counts.sum())
    if n_good == 0:
        kl = math.inf
    else:
        p = counts[counts > 0].double() / n_good
        kl = float((p * (p * len(means)).log()).sum())
    return ModeStats(
        modes=int((counts > 0).sum()),
        high_quality=100.0 * n_good / len(samples),
        reverse_kl=max(kl, 0.0),
        counts=counts.tolist(),
    )


# -- settings ---------------------------------------------------------------------------------------
def pack_setting(pack: int) -> tuple[str, list[str]]:
    return ("gan" if pack == 1 else f"pacgan{pack}"), [f"model.pack={pack}"]


def parse_setting(text: str) -> tuple[str, list[str]]:
    """``name=override,override`` -> ``(name, [overrides])``."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"--setting {text!r}: write NAME=override[,override...], e.g. r1=reg=r1")
    return name, [o for o in rest.split(",") if o]


# -- one run ----------------------------------------------------------------------------------------
def compose_config(data: str, overrides: Sequence[str], output_dir: Path) -> DictConfig:
    """The real train config for ``experiment=<data>_pacgan`` plus ``overrides``, run in ``output_dir``."""
    from ganforge.train import compose_config as compose_train

    base = [
        f"experiment={data}_pacgan",
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "~callbacks.model_summary",
        f"paths.output_dir={output_dir}",
    ]
    return compose_train([*base, *overrides])


@torch.no_grad()
def generate(model: Any, n: int = NUM_SAMPLES, seed: int = 0) -> torch.Tensor:
    """``n`` points from the module's EMA generator (eval mode) on seeded latents."""
    z = torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(seed))
    return model.sample(z).float().cpu()


def run_once(data: str, overrides: Sequence[str], seed: int, output_dir: Path) -> dict[str, Any]:
    """Train one setting for one seed, then score ``NUM_SAMPLES`` generated points."""
    from ganforge.benchmarks.runs import train_to_end
    from ganforge.callbacks.samples import scatter_image

    cfg = compose_config(data, [*overrides, f"seed={seed}"], output_dir)
    start = time.perf_counter()
    result = train_to_end(cfg)
    seconds = time.perf_counter() - start
    model, datamodule = result["model"], result["datamodule"]
    points = generate(model, seed=seed)
    stats = mode_stats(points, datamodule.means, datamodule.std)
    scatter_image(points, cfg.callbacks.get("sample_grid", {}).get("extent")).save(
        output_dir / "eval_points.png"
    )
    return {"seed": seed, "steps": int(result["trainer"].global_step), "seconds": seconds, **asdict(stats)}


def rescore(run_dirs: Sequence[Path], standing: int, batch_size: int = 2500) -> list[dict[str, Any]]:
    """Score the ``last.ckpt`` of finished runs again, as saved and with standing BN statistics.

    For runs trained before ``model.standing_stats`` (or with it off): training is unchanged by it, so
    the second score is what the same run scores with it on. Same latents as the benchmark's.
    """
    from ganforge.checkpoint import load_generator
    from ganforge.data.gaussians import MIXTURES, mixture_means, mixture_name
    from ganforge.ema import latent_batches, standing_stats

    ckpts = sorted({p for d in run_dirs for p in Path(d).rglob("checkpoints/last.ckpt")})
    if not ckpts:
        raise ConfigError(f"--rescore: no checkpoints/last.ckpt below {', '.join(map(str, run_dirs))}")
    rows = []
    for ckpt in ckpts:
        G, cfg = load_generator(ckpt)
        mixture = cfg.data.mixture
        means, std = mixture_means(mixture), float(cfg.data.std or MIXTURES[mixture][1])
        z = torch.randn(NUM_SAMPLES, G.z_dim, generator=torch.Generator().manual_seed(int(cfg.seed)))
        with torch.no_grad():
            saved = mode_stats(G(z, None), means, std)
            # the stream and batches GANModule.ema_generator uses for model.standing_stats
            seed = int(cfg.model.sample_seed) + 1
            standing_stats(G, latent_batches(G.z_dim, standing, batch_size, seed=seed))
            recomputed = mode_stats(G(z, None), means, std)
        # the benchmark's layout is <out>/<data>/<setting>/seed<N>/checkpoints/last.ckpt
        run_dir = ckpt.parent.parent
        setting = run_dir.parent.name if run_dir.name == f"seed{int(cfg.seed)}" else "-"
        rows.append({"checkpoint": str(ckpt), "data": mixture_name(mixture, len(means)), "setting": setting,
                     "seed": int(cfg.seed), "steps": int(cfg.trainer.max_steps),
                     "saved": asdict(saved), "standing": asdict(recomputed)})  # fmt: skip
    return rows


def summarize_rescored(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard error over the seeds of each (data, setting, steps), both ways of scoring.

    Runs of one study often live in separate ``--out`` folders (one seed per process), so the figure
    over seeds comes from here rather than from any single ``results.json``.
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["setting"], r["steps"]), []).append(r)
    return [
        {
            "data": data,
            "setting": setting,
            "steps": steps,
            "seeds": sorted(r["seed"] for r in runs),
            **{
                way: summarize([r[way] for r in runs], ("modes", "high_quality", "reverse_kl"))
                for way in ("saved", "standing")
            },
        }
        for (data, setting, steps), runs in groups.items()
    ]


def run_benchmark(
    datasets: Sequence[str],
    settings: dict[str, list[str]],
    seeds: Sequence[int],
    output_dir: Path,
    overrides: Sequence[str] = (),
    log: Any = print,
) -> dict[str, Any]:
    """Every (dataset, setting, seed); returns ``{data: {setting: {"overrides", "runs", "summary"}}}``."""
    results: dict[str, Any] = {}
    for data in datasets:
        if data not in DATASETS:
            raise ConfigError(f"--data {data!r} is not one of {', '.join(DATASETS)}")
        for name, setting_overrides in settings.items():
            runs = []
            for seed in seeds:
                run_dir = output_dir / data / name / f"seed{seed}"
                run = run_once(data, [*overrides, *setting_overrides], seed, run_dir)
                log(
                    f"{data:7s} {name:14s} seed {seed}: {run['modes']} modes, {run['high_quality']:.1f}% "
                    f"high quality, reverse KL {run['reverse_kl']:.3f} ({run['seconds']:.0f} s)"
                )
                runs.append(run)
            summary = summarize(runs, ("modes", "high_quality", "reverse_kl", "seconds"))
            results.setdefault(data, {})[name] = {
                "overrides": [*overrides, *setting_overrides],
                "runs": runs,
                "summary": summary,
            }
    return results


def format_table(results: dict[str, Any]) -> str:
    """Markdown table: one row per (dataset, setting), mean ± standard error over seeds."""

    lines = [
        "| data | setting | seeds | modes | high quality (%) | reverse KL | s / run |",
        "|---|---|---|---|---|---|---|",
    ]
    for data, settings in results.items():
        for name, res in settings.items():
            s = res["summary"]
            lines.append(
                f"| {data} | {name} | {len(res['runs'])} | {plus_minus(s['modes'], '.1f')} | "
                f"{plus_minus(s['high_quality'], '.1f')} | {plus_minus(s['reverse_kl'], '.3f')} | "
                f"{s['seconds']['mean']:.0f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganforge.benchmarks.mode_collapse",
        description="Count the modes a GAN captures on 2-D Gaussian mixtures (PacGAN protocol).",
    )
    parser.add_argument("--data", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--pack", nargs="*", type=int, default=[1, 2, 3, 4], help="PacGAN degrees (1 = GAN)")
    parser.add_argument("--best", action="store_true", help=f"add the best built-in stabiliser ({BEST[0]})")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=OVR,...", help="extra setting (repeatable)"
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="seeds per setting: first-seed .. first-seed+N-1"
    )
    parser.add_argument("--first-seed", type=int, default=0, help="to add seeds to a study run in parts")
    parser.add_argument("--steps", type=int, default=None, help="D steps per run (default: the experiment's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny nets: 1 is fastest)")
    parser.add_argument("--out", type=Path, default=None, help="default outputs/mode_collapse/<date_time>")
    parser.add_argument(
        "--rescore",
        nargs="+",
        type=Path,
        default=None,
        metavar="DIR",
        help="score the finished runs below DIR again: as saved and with standing BN statistics",
    )
    parser.add_argument("--standing-stats", type=int, default=25000, help="latents for --rescore")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. loss=hinge")
    args = parser.parse_args(argv)
    if args.rescore:
        return _rescore_main(args.rescore, args.standing_stats)

    settings = dict(pack_setting(p) for p in args.pack)
    if args.best:
        settings[BEST[0]] = BEST[1]
    try:
        settings.update(parse_setting(s) for s in args.setting)
        if not settings or args.seeds < 1 or args.first_seed < 0 or min(args.pack, default=1) < 1:
            raise ConfigError(
                "nothing to run: give --pack values >= 1, --best or --setting, --seeds >= 1 "
                "and --first-seed >= 0"
            )
        overrides = [*args.overrides, *([f"trainer.max_steps={args.steps}"] if args.steps else [])]
        out = args.out or Path("outputs/mode_collapse") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        out.mkdir(parents=True, exist_ok=True)
        threads = torch.get_num_threads()
        torch.set_num_threads(args.threads)
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        try:
            seeds = range(args.first_seed, args.first_seed + args.seeds)
            results = run_benchmark(args.data, settings, seeds, out.resolve(), overrides)
        finally:
            torch.set_num_threads(threads)
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    table = format_table(results)
    command = "python -m ganforge.benchmarks.mode_collapse " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    report = {"command": command, "num_samples": NUM_SAMPLES, "threshold_std": THRESHOLD, "results": results}
    (out / "results.json").write_text(json.dumps(json_safe(report), indent=2))
    (out / "results.md").write_text(table + "\n")
    print(table)
    print(f"\nresults: {out / 'results.json'}")
    return 0


def _rescore_main(run_dirs: Sequence[Path], standing: int) -> int:
    try:
        if standing < 1:
            raise ConfigError(f"--standing-stats={standing} must be >= 1")
        rows = rescore(run_dirs, standing)
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    print(
        f"| checkpoint | seed | steps | as saved: modes, high quality, KL | standing stats ({standing:,}) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        a, b = r["saved"], r["standing"]
        cells = [f"{x['modes']}, {x['high_quality']:.1f}%, {x['reverse_kl']:.3f}" for x in (a, b)]
        print(f"| {r['checkpoint']} | {r['seed']} | {r['steps']:,} | {cells[0]} | {cells[1]} |")
    print("\n| data | setting | steps | seeds | as saved: modes, high quality, KL | standing stats |")
    print("|---|---|---|---|---|---|")
    for g in summarize_rescored(rows):
        cells = [
            f"{plus_minus(s['modes'], '.1f')}, {plus_minus(s['high_quality'], '.1f')}%, "
            f"{plus_minus(s['reverse_kl'], '.3f')}"
            for s in (g["saved"], g["standing"])
        ]
        seeds = ", ".join(map(str, g["seeds"]))
        print(f"| {g['data']} | {g['setting']} | {g['steps']:,} | {seeds} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
