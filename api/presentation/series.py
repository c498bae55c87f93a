"""Metric series rows as API JSON, and quantiles estimated from histogram buckets."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from api.presentation.rows import iso_ns
from core.types import Row

QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The q-quantile of explicit-bounds buckets, interpolated linearly inside its bucket,
    as PromQL's histogram_quantile estimates it: the first bucket starts at 0 (or is its
    upper bound when that is <= 0); a rank in the overflow bucket is the highest bound.
    None without observations or finite bounds."""
    total = sum(counts)
    if total == 0 or not bounds or len(counts) != len(bounds) + 1:
        return None
    rank = q * total
    i, below = 0, 0
    while counts[i] == 0 or below + counts[i] < rank:  # the first bucket reaching the rank
        below += counts[i]
        i += 1
    if i == len(bounds):
        return float(bounds[-1])
    upper = float(bounds[i])
    if i == 0 and upper <= 0:
        return upper
    lower = 0.0 if i == 0 else float(bounds[i - 1])
    return lower + (upper - lower) * (rank - below) / counts[i]


def _labels(row: Row, group_by: Sequence[str]) -> dict[str, str]:
    return {key: row[f"g{i}"] for i, key in enumerate(group_by)}


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def value_series(rows: Sequence[Row], group_by: Sequence[str], start_ns: int, step_ns: int) -> list[Row]:
    """Rows (g0.., step, value), ordered by group then step, as one series per group."""
    out: list[Row] = []
    for row in rows:
        labels = _labels(row, group_by)
        if not out or out[-1]["attributes"] != labels:
            out.append({"attributes": labels, "points": []})
        out[-1]["points"].append({"timestamp": iso_ns(start_ns + int(row["step"]) * step_ns),
                                  "value": _number(row["value"])})
    return out


def histogram_series(rows: Sequence[Row], group_by: Sequence[str], start_ns: int, step_ns: int) -> list[Row]:
    """Rows (g0.., step, bounds, buckets, count, sum), ordered by group, bounds, step, as
    one series per group and bucket layout, each step with its quantiles."""
    out: list[Row] = []
    for row in rows:
        labels, bounds = _labels(row, group_by), [float(b) for b in row["bounds"]]
        if not out or out[-1]["attributes"] != labels or out[-1]["bounds"] != bounds:
            out.append({"attributes": labels, "bounds": bounds, "points": []})
        buckets = [int(c) for c in row["buckets"]]
        point: Row = {"timestamp": iso_ns(start_ns + int(row["step"]) * step_ns), "count": int(row["count"]),
                      "sum": _number(row["sum"]), "buckets": buckets}
        for q, name in QUANTILES:
            point[name] = bucket_quantile(q, bounds, buckets)
        out[-1]["points"].append(point)
    return out
