"""Training runs shared by the benchmarks that train settings over seeds: the composed CPU config of one run,
the loop over settings and seeds, and the finished runs gathered from their ``result.json`` files."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import GanforgeError


class RunStopped(GanforgeError):
    """A benchmark run ended before its last step (SIGTERM): it is no result and is not recorded."""


def train_to_end(cfg: Any) -> dict[str, Any]:
    """``train(cfg)`` for a benchmark: a run that a SIGTERM stopped early raises ``RunStopped`` instead of
    returning, so that a partial run never becomes a row of a table (its ``last.ckpt`` is kept)."""
    from ganforge.train import train

    result = train(cfg)
    if result["preempted"]:
        raise RunStopped(
            f"the run in {cfg.paths.output_dir} was stopped by SIGTERM after step "
            f"{result['trainer'].global_step} of {cfg.trainer.max_steps}; it is not recorded. Run the "
            "benchmark again for it"
        )
    return result


def compose_run(
    experiment: str, data_path: str | None, steps: int, seed: int, out: Path, overrides: Sequence[str]
):
    """The real train config of ``experiment`` for one CPU run without periodic metrics (the benchmark
    scores it once, at the end), writing under ``out``."""
    from ganforge.train import compose_config

    return compose_config(
        [
            f"experiment={experiment}",
            *([f"data.path={data_path}"] if data_path else []),
            "trainer=cpu",
            f"trainer.max_steps={steps}",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "callbacks=default",  # scored once, at the end, by the benchmark
            "~callbacks.model_summary",
            f"callbacks.sample_grid.every_n_steps={max(steps // 4, 1)}",
            f"callbacks.model_checkpoint.every_n_train_steps={steps}",
            f"seed={seed}",
            f"paths.output_dir={out}",
            f"hydra.run.dir={out}",
            *overrides,
        ]
    )


def gather(root: Path, order: Iterable[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """Every finished run under ``root`` (``<root>/<setting>/seed<N>/result.json``), by setting: those of
    ``order`` first, in that order, then any others."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(root.glob("*/seed*/result.json")):
        run = json.loads(path.read_text())
        runs.setdefault(run["setting"], []).append(run)
    return {name: runs[name] for name in dict.fromkeys([*order, *runs]) if name in runs}


def run_grid(
    names: Sequence[str],
    seeds: Iterable[int],
    out: Path,
    threads: int | None,
    run_one: Callable[[str, int, Path], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
) -> int:
    """``run_one(name, seed, <out>/<name>/seed<seed>)`` for every seed and name, a line for each finished run;
    exit status 0, 143 after a run stopped by SIGTERM (``RunStopped``: the grid ends there), or 2 after
    printing another ``GanforgeError`` (bad data, options) as the CLIs do."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if threads:
        torch.set_num_threads(threads)
    try:
        for seed in seeds:
            for name in names:
                run = run_one(name, seed, out / name / f"seed{seed}")
                print(f"{name:18s} seed {seed}: {describe(run)}", flush=True)
    except RunStopped as e:
        from ganforge.train import EXIT_PREEMPTED

        print(f"ganforge: stopped: {e}", file=sys.stderr)
        return EXIT_PREEMPTED
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    return 0
