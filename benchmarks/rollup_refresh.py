"""Rollup refresh cost and rollup read latency against raw-span reads, in chDB.

Usage: ``python benchmarks/rollup_refresh.py [--spans 2000000] [--minutes 60] [--blocks 20]
[--reads 100] [--data-dir DIR]``

Stores ``spans`` spans (traces of five: frontend server -> frontend client -> a backend
server -> a database client span with db.system, and an internal span) spread over
``minutes`` minutes, in ``blocks`` inserts made by the engine itself, so that generating
them costs no Python. Then: brings the rollups up to date from scratch
(``refresh_rollups(..., until_done=True)``), times one steady-state pass after one more
minute of spans, and times the service list, the service map and a minute series read
from the rollups (``reads`` times each) against the same answers computed from raw spans
with FINAL (a few times each). Prints one JSON object; times are in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# Runnable as a script from anywhere: the repository root goes on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.params import TimeRange  # noqa: E402
from api.queries.alerts import service_buckets  # noqa: E402
from api.queries.scope import QueryScope  # noqa: E402
from api.queries.services import service_edges, service_stats  # noqa: E402
from core.settings import ClickHouseSettings  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.rollups import refresh_rollups  # noqa: E402
from sinks.warehouse import Warehouse  # noqa: E402

MIN_NS = 60 * 1_000_000_000
SPANS_PER_TRACE = 5
# One trace's spans from the engine: k is the span's place in its trace, t the trace.
GENERATE = """
INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    ResourceAttributes, SpanAttributes, Duration, StatusCode, CorrelationId)
SELECT fromUnixTimestamp64Nano(toInt64({{t0_ns:Int64}} + t * {{gap_ns:Int64}} + k * 1000000)),
    concat(hex(cityHash64(t)), hex(cityHash64(t, 1))),
    hex(cityHash64(t, k + 2)),
    multiIf(k = 0, '', k = 1, hex(cityHash64(t, 2)), k = 2, hex(cityHash64(t, 3)), hex(cityHash64(t, 4))),
    ['GET /', 'GET backend', 'handle', 'SELECT rows', 'render'][k + 1],
    ['Server', 'Client', 'Server', 'Client', 'Internal'][k + 1],
    if(k < 2, 'frontend', concat('backend-', toString(t % 8))),
    map('service.name', if(k < 2, 'frontend', concat('backend-', toString(t % 8))), 'tenant.id', 'acme'),
    if(k = 3, map('db.system', 'postgresql'), map()),
    1000000 + cityHash64(t, k, 7) % 400000000,
    if(cityHash64(t, k, 9) % 100 < 2, 'Error', 'Ok'),
    concat('req-', toString(t))
FROM (SELECT intDiv(number, 5) AS t, number % 5 AS k FROM numbers({{first:UInt64}}, {{count:UInt64}}))
"""


def store(wh: Warehouse, first: int, count: int, t0_ns: int, gap_ns: int) -> None:
    wh.execute(GENERATE.format(db=wh.database),
               {"first": first, "count": count, "t0_ns": t0_ns, "gap_ns": gap_ns})


def millis(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2)}


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - began)
    return millis(samples)


RAW_SERVICES = ("SELECT ServiceName, count(), countIf(e), quantilesBFloat16If(0.5, 0.95, 0.99)(Duration, e) "
                "FROM (SELECT ServiceName, Duration, (ParentSpanId = '' OR SpanKind = 'Server') AS e "
                "FROM {db}.otel_traces FINAL) GROUP BY ServiceName")
RAW_EDGES = ("SELECT p.s, c.s, count(), quantilesBFloat16(0.5, 0.95, 0.99)(c.d) FROM "
             "(SELECT TraceId, SpanId, ServiceName AS s FROM {db}.otel_traces FINAL) AS p JOIN "
             "(SELECT TraceId, ParentSpanId, ServiceName AS s, Duration AS d FROM {db}.otel_traces FINAL "
             "WHERE ParentSpanId != '') AS c ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId "
             "WHERE p.s != c.s GROUP BY p.s, c.s")


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    wh = open_warehouse(ClickHouseSettings(database="rollup_bench"), data_dir)
    migrate(wh, ClickHouseSettings(database="rollup_bench"))
    t0_ns = (time.time_ns() // MIN_NS - args.minutes - 5) * MIN_NS
    traces = args.spans // SPANS_PER_TRACE
    gap_ns = args.minutes * MIN_NS // traces
    per_block = traces // args.blocks * SPANS_PER_TRACE
    began = time.perf_counter()
    for b in range(args.blocks):
        store(wh, b * per_block, per_block, t0_ns, gap_ns)
    stored_s = time.perf_counter() - began
    full = refresh_rollups(wh, margin_s=0, max_minutes=args.max_minutes, until_done=True)
    # Steady state: one more minute of spans arrives, one pass brings it in.
    more = traces // args.minutes * SPANS_PER_TRACE
    store(wh, args.blocks * per_block, more, t0_ns, gap_ns)
    one = refresh_rollups(wh, margin_s=0, max_minutes=args.max_minutes)
    scope = QueryScope(wh.database)
    window = TimeRange(t0_ns, t0_ns + (args.minutes + 2) * MIN_NS)
    reads = {
        "services": await timed(lambda: service_stats(wh, scope, window, 100), args.reads),
        "service_map": await timed(lambda: service_edges(wh, scope, window, 100), args.reads),
        "minute_series": await timed(lambda: service_buckets(wh, scope, window, 60, None, None, 200_000),
                                     args.reads),
        "raw_services": await timed(lambda: asyncio.to_thread(wh.query, RAW_SERVICES.format(db=wh.database)), 3),
        "raw_service_map": await timed(lambda: asyncio.to_thread(wh.query, RAW_EDGES.format(db=wh.database)), 3),
    }
    rows = wh.query(f"SELECT (SELECT count() FROM {wh.database}.ollystack_service_rollup) AS service_rows, "
                    f"(SELECT count() FROM {wh.database}.ollystack_service_edges) AS edge_rows")[0]
    wh.execute(f"DROP DATABASE IF EXISTS {wh.database} SYNC")
    return {
        "spans": per_block * args.blocks + more, "minutes": args.minutes, "blocks": args.blocks,
        "store_s": round(stored_s, 2),
        "full_refresh": {"minutes": full.minutes, "passes": full.passes, "seconds": round(full.seconds, 2),
                         "spans_per_s": round(per_block * args.blocks / full.seconds)},
        "one_minute_pass": {"minutes": one.minutes, "spans": more, "ms": round(one.seconds * 1000, 1)},
        "rollup_rows": rows, "reads": reads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--max-minutes", type=int, default=30)
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(run(args, args.data_dir or Path(tmp))), indent=1))


if __name__ == "__main__":
    main()
