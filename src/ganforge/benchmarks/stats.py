"""Summaries over seeds shared by the benchmarks: mean ± standard error, and their table cells."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def mean_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for one value; NaN when a value is infinite)."""
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    if not math.isfinite(mean):
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def summarize(runs: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{key: {"mean", "sem"}}`` over the runs (seeds) of one setting."""
    return {key: dict(zip(("mean", "sem"), mean_sem([r[key] for r in runs]), strict=True)) for key in keys}


def plus_minus(s: dict[str, float], fmt: str) -> str:
    return f"{s['mean']:{fmt}} ± {s['sem']:{fmt}}"


def json_safe(obj: Any) -> Any:
    """inf/NaN -> null, so that results files are strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj
