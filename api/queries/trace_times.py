"""Where in time a lookup's traces lie, as Timestamp conditions that let reads skip the rest.

The Collector's ``otel_traces_trace_id_ts`` holds, per trace, the whole seconds its first and
last span started in (as Grafana's ClickHouse plugin reads it in OTel mode). A Timestamp range
is what the span and log tables can prune by (partitions by day, and the time in their sort
keys); the TraceId bloom filter alone is checked in every granule of every part, so without
ranges a lookup's cost grows with the table.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from api.params import NS_PER_S
from api.queries.scope import trace_id_list, trace_id_set
from sinks.warehouse import check_identifier

# A trace's logs (and its exemplars) can lie outside the start times of its spans: a log written
# while the last span runs comes after that span's start by up to the span's duration (which
# trace_id_ts does not hold), and a service's clock can differ from the one that stamped the
# spans. Logs and exemplars of a trace are read this far either side of its spans' range; one
# further out is not found through the trace. Granules of the busiest log tables hold a few
# seconds to minutes, so a minute costs a granule or so per range.
LOG_MARGIN_S = 60
# A lookup of many traces spread over time would name every range in the SQL text; past this
# many, the closest ranges are joined (a wider read, never a missed row).
MAX_RANGES = 32


@dataclass(frozen=True)
class TraceTimes:
    """Where the rows of a lookup's traces and of its ID lie in time.

    ``spans_s``: per trace, the whole seconds of its first and last span start.
    ``unknown``: traces without such a row (only logs were stored, or the row's retention
    passed): their rows are read without a time range.
    ``own_ns``: the first and last Timestamp of rows stored under the ID itself, from the
    correlation index (None without an index row): it bounds the logs that carry no trace."""

    spans_s: dict[str, tuple[int, int]]
    unknown: tuple[str, ...] = ()
    own_ns: tuple[int, int] | None = None

    @property
    def trace_ids(self) -> list[str]:
        return sorted([*self.spans_s, *self.unknown])


def time_ranges(spans_s: Iterable[tuple[int, int]], margin_s: int, max_ranges: int = MAX_RANGES
                ) -> list[tuple[int, int]]:
    """Half-open [start_ns, end_ns) ranges covering each (first, last) second pair widened by
    ``margin_s``, overlapping ones merged, at most ``max_ranges`` (the closest joined)."""
    ranges: list[list[int]] = []
    for first, last in sorted((first - margin_s, last + 1 + margin_s) for first, last in spans_s):
        if ranges and first <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], last)
        else:
            ranges.append([first, last])
    while len(ranges) > max_ranges:
        gap = min(range(len(ranges) - 1), key=lambda i: ranges[i + 1][0] - ranges[i][1])
        ranges[gap:gap + 2] = [[ranges[gap][0], ranges[gap + 1][1]]]
    return [(first * NS_PER_S, last * NS_PER_S) for first, last in ranges]


def ranges_filter(name: str, ranges: list[tuple[int, int]], column: str = "Timestamp") -> tuple[str, dict[str, Any]]:
    """``(<column> in range 0 OR …)`` with bound parameters named after ``name``; '0' for none."""
    check_identifier(name, "parameter prefix")
    parts, params = [], {}
    for i, (start_ns, end_ns) in enumerate(ranges):
        parts.append(f"({column} >= fromUnixTimestamp64Nano({{{name}_from_{i}:Int64}}) "
                     f"AND {column} < fromUnixTimestamp64Nano({{{name}_to_{i}:Int64}}))")
        params[f"{name}_from_{i}"], params[f"{name}_to_{i}"] = start_ns, end_ns
    return ("(" + " OR ".join(parts) + ")" if parts else "0"), params


def traces_filter(name: str, times: TraceTimes, margin_s: int) -> tuple[str, dict[str, Any]]:
    """A condition on TraceId and Timestamp matching the rows of ``times``' traces: those with
    known span times within them (widened by ``margin_s``), the others by TraceId alone.
    Parameters are named after ``name``; '0' when there are no traces."""
    if not times.spans_s and not times.unknown:
        return "0", {}
    params: dict[str, Any] = {f"{name}_ids": trace_id_list(times.trace_ids)}
    within, range_params = ranges_filter(name, time_ranges(times.spans_s.values(), margin_s))
    params.update(range_params)
    if times.unknown:
        within = f"({within} OR TraceId IN {trace_id_set(f'{name}_unknown')})"
        params[f"{name}_unknown"] = trace_id_list(times.unknown)
    return f"(TraceId IN {trace_id_set(f'{name}_ids')} AND {within})", params
