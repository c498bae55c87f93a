"""Correlation lookup latency with a million spans in chDB.

Usage: ``python benchmarks/correlation_lookup.py [--traces 100000] [--spans-per-trace 10]
[--ids 20000] [--lookups 200] [--data-dir DIR]``

Stores ``traces x spans-per-trace`` spans (each correlation ID spans traces/ids traces; every
other trace has its children stored under a generated ``olly-`` ID and only the root under the
external ID, with a trace link for both), two logs per trace and an exemplar per ten traces,
then looks up random external IDs through the API app (HTTP over ASGI, cache off) and through
the query function alone. Prints one JSON object; latencies are in milliseconds. The traces of
one ID are spread over the day, the worst case for the Collector's sort key (ServiceName,
SpanName, time): each span of a lookup sits in its own granule.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Runnable as a script from anywhere: the repository root goes on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from api.app import create_app  # noqa: E402
from api.params import Limits  # noqa: E402
from api.queries.correlation import load_correlation  # noqa: E402
from api.queries.scope import QueryScope  # noqa: E402
from core.settings import ClickHouseSettings, Settings  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.warehouse import Warehouse  # noqa: E402

SERVICES = ("frontend", "checkout", "payment", "inventory", "cart", "shipping", "email", "currency")
OPERATIONS = ("POST /checkout", "POST /charge", "GET /stock", "GET /cart", "POST /ship", "SELECT orders",
              "INSERT payments", "GET /rates", "POST /email", "publish order.placed")


def external_id(n: int) -> str:
    return f"order-{n:08d}"


def generated_id(trace: int) -> str:
    return f"olly-{trace:x}-{trace * 2654435761 % 2**32:08x}"


def trace_block(first: int, count: int, spans: int, ids: int, t0_ns: int,
                rnd: random.Random) -> dict[str, dict[str, list[Any]]]:
    """Column blocks of otel_traces, otel_logs, ollystack_trace_links, metric_exemplars."""
    tr: dict[str, list[Any]] = {k: [] for k in ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName",
                                                "SpanKind", "ServiceName", "ResourceAttributes", "SpanAttributes",
                                                "Duration", "StatusCode", "CorrelationId")}
    lg: dict[str, list[Any]] = {k: [] for k in ("Timestamp", "TraceId", "SpanId", "SeverityNumber", "SeverityText",
                                                "ServiceName", "Body", "CorrelationId")}
    ln: dict[str, list[Any]] = {k: [] for k in ("TraceId", "CorrelationId", "Source", "Priority", "FirstSeen",
                                                "LastSeen")}
    ex: dict[str, list[Any]] = {k: [] for k in ("Timestamp", "MetricName", "MetricType", "ServiceName", "Value",
                                                "TraceId", "SpanId", "CorrelationId")}
    for trace in range(first, first + count):
        trace_id = f"{rnd.getrandbits(128):032x}"
        cid, gen = external_id(trace % ids), generated_id(trace)
        upgraded = trace % 2 == 0
        start = t0_ns + trace * 800_000_000
        root_span = f"{rnd.getrandbits(64):016x}"
        for s in range(spans):
            service = SERVICES[(trace + s) % len(SERVICES)]
            span_id = root_span if s == 0 else f"{rnd.getrandbits(64):016x}"
            tr["Timestamp"].append(start + s * 2_000_000)
            tr["TraceId"].append(trace_id)
            tr["SpanId"].append(span_id)
            tr["ParentSpanId"].append("" if s == 0 else root_span)
            tr["SpanName"].append(OPERATIONS[s % len(OPERATIONS)])
            tr["SpanKind"].append("Server" if s == 0 else "Client")
            tr["ServiceName"].append(service)
            tr["ResourceAttributes"].append({"service.name": service, "deployment.environment.name": "prod"})
            tr["SpanAttributes"].append({"http.request.method": "POST", "http.response.status_code": "200"})
            tr["Duration"].append(rnd.randint(100_000, 80_000_000))
            tr["StatusCode"].append("Error" if rnd.random() < 0.01 else "Ok")
            tr["CorrelationId"].append(cid if s == 0 or not upgraded else gen)
        for k, (number, text) in enumerate(((9, "INFO"), (17, "ERROR") if rnd.random() < 0.05 else (9, "INFO"))):
            lg["Timestamp"].append(start + (k + 1) * 3_000_000)
            lg["TraceId"].append(trace_id)
            lg["SpanId"].append(root_span)
            lg["SeverityNumber"].append(number)
            lg["SeverityText"].append(text)
            lg["ServiceName"].append(SERVICES[trace % len(SERVICES)])
            lg["Body"].append(f"step {k} of order {trace % ids}")
            lg["CorrelationId"].append(cid if not upgraded else gen)
        for link_id, source, priority in ((cid, "resource", 0),) + (((gen, "generated", 6),) if upgraded else ()):
            ln["TraceId"].append(trace_id)
            ln["CorrelationId"].append(link_id)
            ln["Source"].append(source)
            ln["Priority"].append(priority)
            ln["FirstSeen"].append(start)
            ln["LastSeen"].append(start + spans * 2_000_000)
        if trace % 10 == 0:
            for key, value in (("Timestamp", start), ("MetricName", "http.server.request.duration"),
                               ("MetricType", "histogram"), ("ServiceName", SERVICES[0]), ("Value", 12.5),
                               ("TraceId", trace_id), ("SpanId", root_span), ("CorrelationId", cid)):
                ex[key].append(value)
    return {"otel_traces": tr, "otel_logs": lg, "ollystack_trace_links": ln, "metric_exemplars": ex}


def load(wh: Warehouse, traces: int, spans: int, ids: int, block: int, seed: int) -> float:
    rnd = random.Random(seed)
    # Recent, so the exemplar table's TTL keeps the rows.
    t0_ns = time.time_ns() - traces * 800_000_000 - 3600 * 1_000_000_000
    started = time.perf_counter()
    for first in range(0, traces, block):
        for table, cols in trace_block(first, min(block, traces - first), spans, ids, t0_ns, rnd).items():
            if cols["Timestamp" if "Timestamp" in cols else "TraceId"]:
                wh.insert(table, cols)
    return time.perf_counter() - started


def quantiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return (round(ordered[len(ordered) // 2], 2),
            round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2))


async def measure(wh: Warehouse, ids: list[str]) -> dict[str, Any]:
    app = create_app(Settings(), wh, cache_ttl_s=0)
    http_ms, query_ms, spans_seen = [], [], []
    scope, limits = QueryScope(wh.database), Limits()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for cid in ids[:5]:  # warm-up
            (await client.get(f"/api/v1/correlate/{cid}")).raise_for_status()
        for cid in ids:
            started = time.perf_counter()
            response = await client.get(f"/api/v1/correlate/{cid}")
            http_ms.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            spans_seen.append(response.json()["summary"]["spans"])
            started = time.perf_counter()
            await load_correlation(wh, scope, cid, limits)
            query_ms.append((time.perf_counter() - started) * 1000)
    p50, p99 = quantiles(http_ms)
    q50, q99 = quantiles(query_ms)
    return {"p50_ms": p50, "p99_ms": p99, "query_p50_ms": q50, "query_p99_ms": q99,
            "spans_per_lookup": round(sum(spans_seen) / len(spans_seen), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--spans-per-trace", type=int, default=10)
    parser.add_argument("--ids", type=int, default=20_000, help="distinct external correlation IDs")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--block-traces", type=int, default=10_000, help="traces per insert block")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="chDB folder (default: a new temp folder); data already there is reused")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="ollystack-bench-"))
    wh = open_warehouse(ClickHouseSettings(database="bench"), data_dir)
    migrate(wh, ClickHouseSettings())
    stored = wh.query("SELECT count() AS n FROM bench.otel_traces")[0]["n"]
    insert_s = None
    if stored < args.traces * args.spans_per_trace:
        insert_s = round(load(wh, args.traces, args.spans_per_trace, args.ids, args.block_traces, args.seed), 1)
    counts = {t: wh.query(f"SELECT count() AS n FROM bench.{t}")[0]["n"]
              for t in ("otel_traces", "otel_logs", "ollystack_trace_links", "metric_exemplars")}
    rnd = random.Random(args.seed + 1)
    lookups = [external_id(rnd.randrange(args.ids)) for _ in range(args.lookups)]
    result = asyncio.run(measure(wh, lookups))
    if args.data_dir is None:  # a temp folder of our own: free the space
        wh.execute("DROP DATABASE bench SYNC")
    print(json.dumps({
        "benchmark": "correlation_lookup", "backend": "chdb", "rows": counts["otel_traces"],
        "logs": counts["otel_logs"], "trace_links": counts["ollystack_trace_links"],
        "exemplars": counts["metric_exemplars"], "correlation_ids": args.ids, "lookups": args.lookups,
        **result, "insert_s": insert_s, "data_dir": str(data_dir) if args.data_dir else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
