"""Metric series latency over a day of points in chDB, and the cost of the retention check at start.

Usage: ``python benchmarks/metric_series.py [--series 200] [--interval-s 10] [--queries 5] [--data-dir DIR]``

Stores one day of points every ``interval-s`` seconds for ``series`` series of a gauge, a
monotonic cumulative sum (each series reset once a day) and a cumulative histogram of 11
buckets (about 1.7 M rows a table at the defaults), spread over 10 services and 20 routes,
then asks GET /api/v1/metrics/{name} over the whole day (step 300 s) through the API app
(HTTP over ASGI) without and with group_by. Prints one JSON object; latencies in milliseconds
(median of ``queries``). The retention check is timed with nothing to change (every start)
and with every TTL changed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Runnable as a script from anywhere: the repository root goes on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from api.app import create_app  # noqa: E402
from core.settings import ClickHouseSettings, Settings  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.retention import apply_retention  # noqa: E402
from sinks.warehouse import Warehouse  # noqa: E402

DAY_S = 86_400
NS = 1_000_000_000


def _points(series: int, interval_s: int, t0_s: int) -> str:
    """A SELECT of (series, time, value) rows: one day, every interval_s, per series."""
    per_series = DAY_S // interval_s
    return (f"SELECT number % {series} AS s, toDateTime64({t0_s} + intDiv(number, {series}) * {interval_s}, 9) AS t, "
            f"intDiv(number, {series}) AS i FROM numbers({series * per_series})")


def store(wh: Warehouse, series: int, interval_s: int, t0_s: int) -> int:
    """Insert the three metrics with INSERT … SELECT (the engine generates the rows)."""
    db, src = wh.database, _points(series, interval_s, t0_s)
    common = ("concat('svc-', toString(s % 10)) AS ServiceName, "
              "map('service.name', ServiceName) AS ResourceAttributes, "
              "map('route', concat('/r', toString(s % 20)), 'instance', toString(s)) AS Attributes, t AS TimeUnix")
    wh.execute(f"INSERT INTO {db}.otel_metrics_gauge (ServiceName, ResourceAttributes, Attributes, TimeUnix, "
               f"MetricName, Value) SELECT {common}, 'queue.depth', toFloat64((i * 7 + s) % 100) FROM ({src})")
    half = DAY_S // interval_s // 2  # each series restarts half way through the day
    wh.execute(f"INSERT INTO {db}.otel_metrics_sum (ServiceName, ResourceAttributes, Attributes, TimeUnix, "
               "StartTimeUnix, MetricName, Value, AggregationTemporality, IsMonotonic) "
               f"SELECT {common}, toDateTime64({t0_s} + if(i < {half}, 0, {half} * {interval_s}), 9), "
               f"'http.requests', toFloat64(if(i < {half}, i, i - {half}) * 3), 2, true FROM ({src})")
    wh.execute(f"INSERT INTO {db}.otel_metrics_histogram (ServiceName, ResourceAttributes, Attributes, TimeUnix, "
               "StartTimeUnix, MetricName, Count, Sum, BucketCounts, ExplicitBounds, AggregationTemporality) "
               f"SELECT {common}, toDateTime64({t0_s}, 9), 'http.duration', i * 10, i * 500.0, "
               "arrayMap(b -> toUInt64(i), range(11)) AS buckets, [5., 10., 25., 50., 100., 250., 500., 1000., "
               f"2500., 5000.], 2 FROM ({src})")
    return series * (DAY_S // interval_s)


async def timed(client: httpx.AsyncClient, url: str, params: dict[str, str], queries: int) -> dict[str, Any]:
    times, body = [], None
    for _ in range(queries):
        started = time.perf_counter()
        response = await client.get(url, params=params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        body = response.json()
    assert body is not None
    return {"median_ms": round(statistics.median(times), 1), "series": len(body["series"]),
            "points": sum(len(s["points"]) for s in body["series"]), "applied": body["applied"]}


async def measure(wh: Warehouse, t0_s: int, queries: int) -> dict[str, Any]:
    app = create_app(Settings(), wh, clock_ns=lambda: (t0_s + DAY_S) * NS)
    day = {"start": str(t0_s * 1000), "end": str((t0_s + DAY_S) * 1000), "step_s": "300"}
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        for name in ("queue.depth", "http.requests", "http.duration"):
            for label, extra in (("all", {}), ("by_route", {"group_by": "route"})):
                out[f"{name}/{label}"] = await timed(client, f"/api/v1/metrics/{name}", {**day, **extra}, queries)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--interval-s", type=int, default=10)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ch = ClickHouseSettings(database="bench_series")
        wh = open_warehouse(ch, args.data_dir or Path(tmp))
        migrate(wh, ch)
        t0_s = (int(time.time()) // DAY_S - 1) * DAY_S
        started = time.perf_counter()
        rows = store(wh, args.series, args.interval_s, t0_s)
        stored_s = time.perf_counter() - started
        result = asyncio.run(measure(wh, t0_s, args.queries))
        started = time.perf_counter()
        assert apply_retention(wh, ch) == []
        unchanged_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        changed = apply_retention(wh, ClickHouseSettings(database="bench_series", traces_ttl_days=30, logs_ttl_days=30,
                                                         metrics_ttl_days=30, correlation_ttl_days=30))
        changed_ms = (time.perf_counter() - started) * 1000
        wh.close()
    print(json.dumps({"rows_per_metric": rows, "store_s": round(stored_s, 1), "queries": result,
                      "retention_check_unchanged_ms": round(unchanged_ms, 1),
                      "retention_alter_ms": round(changed_ms, 1), "tables_altered": len(changed)}, indent=1))


if __name__ == "__main__":
    main()
