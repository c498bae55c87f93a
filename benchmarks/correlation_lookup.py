"""Correlation lookup latency at one and ten million spans in chDB, beside the services endpoints.

Usage: ``python benchmarks/correlation_lookup.py [--sizes 1000000,10000000] [--spans-per-trace 10]
[--lookups 200] [--service-requests 10] [--data-dir DIR]``

Stores spans up to each size in turn (ten per trace, two logs per trace, an exemplar per ten
traces) and measures at each: random external IDs looked up through the API app (HTTP over
ASGI, cache off), through the query function alone and through its first statement alone (ID
-> traces), and ``/api/v1/services`` and ``/api/v1/service-map`` over the last hour (the
API's default window) and the last 24 hours of the data. Prints one JSON object; latencies are in milliseconds,
with the growth from the first size to the last and, at the last size, each p99 against the 50 ms goal
(exit status 1 when one is missed).

The data keeps one shape at every size: each block of 100k traces (about 22 hours) has 20k
IDs of its own, five traces each, spread over that block's day, the worst case for the
Collector's sort key (ServiceName, SpanName, time), where each span of a lookup sits in its own
granule. Every other trace has its children stored under a generated ``olly-`` ID and only the
root under the external ID (the external ID arrived last), with a trace link for both. The
newest trace starts now and older ones go back in time, so a larger size adds history and the
windows of the services endpoints hold the same rows at every size. Rows are built as Arrow
columns and stored with the ingest stage's batch insert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Runnable as a script from anywhere: the repository root goes on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from api.app import create_app  # noqa: E402
from api.params import Limits  # noqa: E402
from api.queries.correlation import load_correlation, resolve_traces  # noqa: E402
from api.queries.scope import QueryScope  # noqa: E402
from core.settings import ClickHouseSettings, Settings  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.batches import insert_tables  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.rollups import refresh_rollups  # noqa: E402
from sinks.warehouse import Warehouse  # noqa: E402

SERVICES = ("frontend", "checkout", "payment", "inventory", "cart", "shipping", "email", "currency")
OPERATIONS = ("POST /checkout", "POST /charge", "GET /stock", "GET /cart", "POST /ship", "SELECT orders",
              "INSERT payments", "GET /rates", "POST /email", "publish order.placed")
TRACES_PER_BLOCK = 100_000  # one block of the data's shape: about a day of traces
IDS_PER_BLOCK = 20_000  # so every ID has five traces, spread over its block's day
TRACE_GAP_NS = 800_000_000
SPAN_GAP_NS = 2_000_000
HOUR_MS = 3_600_000  # the API's default window
DAY_MS = 86_400_000
TABLES = ("otel_traces", "otel_logs", "ollystack_trace_links", "metric_exemplars")
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def external_id(n: int) -> str:
    return f"order-{n:08d}"


def generated_id(trace: int) -> str:
    return f"olly-{trace:x}-{trace * 2654435761 % 2**32:08x}"


def _hex_chars(rng: np.random.Generator, count: int, nbytes: int) -> np.ndarray:
    """``count`` random IDs of ``nbytes`` bytes as rows of lowercase hex characters."""
    raw = rng.integers(0, 256, size=(count, nbytes), dtype=np.uint8)
    out = np.empty((count, 2 * nbytes), np.uint8)
    out[:, 0::2], out[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    return out


def _strings(chars: np.ndarray) -> pa.Array:
    """Rows of characters (all one width) as an Arrow string array, without a Python object each."""
    count, width = chars.shape
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars)))


def _pick(values: tuple[str, ...] | pa.Array, index: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, pa.string()) if isinstance(values, tuple) else values, pa.array(index))


def _map(keys: list[pa.Array], items: list[pa.Array]) -> pa.MapArray:
    """A Map column whose every row has the keys ``keys`` (one array per key) and ``items``."""
    rows = len(keys[0])
    width = len(keys)
    offsets = pa.array(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    flat_keys = pc.take(pa.concat_arrays(keys), pa.array(_interleave(rows, width)))
    flat_items = pc.take(pa.concat_arrays(items), pa.array(_interleave(rows, width)))
    return pa.MapArray.from_arrays(offsets, flat_keys, flat_items)


def _interleave(rows: int, width: int) -> np.ndarray:
    # Row r's k-th entry is element r of the k-th array: position k * rows + r.
    return (np.arange(width)[None, :] * rows + np.arange(rows)[:, None]).ravel()


def _constant(value: str, rows: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), pa.array([value])).cast(pa.string())


def id_numbers(traces: np.ndarray) -> np.ndarray:
    return (traces // TRACES_PER_BLOCK) * IDS_PER_BLOCK + traces % IDS_PER_BLOCK


def trace_block(first: int, count: int, spans: int, newest_ns: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """Arrow tables of otel_traces, otel_logs, ollystack_trace_links and metric_exemplars for
    traces ``first`` .. ``first + count - 1``."""
    traces = np.arange(first, first + count, dtype=np.int64)
    start = newest_ns - traces * TRACE_GAP_NS
    ids = id_numbers(traces)
    trace_ids = _strings(_hex_chars(rng, count, 16))
    root_chars = _hex_chars(rng, count, 8)
    cid = pa.array([external_id(int(n)) for n in ids], pa.string())
    gen = pa.array([generated_id(int(t)) for t in traces], pa.string())
    upgraded = traces % 2 == 0

    t_of = np.repeat(np.arange(count), spans)
    s_of = np.tile(np.arange(spans), count)
    rows = count * spans
    span_chars = _hex_chars(rng, rows, 8)
    span_chars[s_of == 0] = root_chars
    service = _pick(SERVICES, (traces[t_of] + s_of) % len(SERVICES))
    root = _strings(root_chars)
    is_root = pa.array(s_of == 0)
    spans_table = pa.table({
        "Timestamp": pa.array(start[t_of] + s_of * SPAN_GAP_NS, pa.timestamp("ns")),
        "TraceId": _pick(trace_ids, t_of),
        "SpanId": _strings(span_chars),
        "ParentSpanId": pc.if_else(is_root, "", _pick(root, t_of)),
        "SpanName": _pick(OPERATIONS, s_of % len(OPERATIONS)),
        "SpanKind": pc.if_else(is_root, "Server", "Client"),
        "ServiceName": service,
        "ResourceAttributes": _map([_constant("service.name", rows), _constant("deployment.environment.name", rows)],
                                   [service, _constant("prod", rows)]),
        "SpanAttributes": _map([_constant("http.request.method", rows), _constant("http.response.status_code", rows)],
                               [_constant("POST", rows), _constant("200", rows)]),
        "Duration": pa.array(rng.integers(100_000, 80_000_000, rows, dtype=np.uint64, endpoint=True)),
        "StatusCode": pc.if_else(pa.array(rng.random(rows) < 0.01), "Error", "Ok"),
        "CorrelationId": pc.if_else(pa.array((s_of == 0) | ~upgraded[t_of]), _pick(cid, t_of), _pick(gen, t_of)),
    })

    l_of = np.repeat(np.arange(count), 2)
    k_of = np.tile(np.arange(2), count)
    severe = (k_of == 1) & (rng.random(2 * count) < 0.05)
    logs_table = pa.table({
        "Timestamp": pa.array(start[l_of] + (k_of + 1) * 3_000_000, pa.timestamp("ns")),
        "TraceId": _pick(trace_ids, l_of),
        "SpanId": _pick(root, l_of),
        "SeverityNumber": pa.array(np.where(severe, 17, 9).astype(np.uint8)),
        "SeverityText": pc.if_else(pa.array(severe), "ERROR", "INFO"),
        "ServiceName": _pick(SERVICES, traces[l_of] % len(SERVICES)),
        "Body": pc.binary_join_element_wise("step ", pa.array(k_of.astype(str)), " of order ",
                                            pa.array(ids[l_of].astype(str)), ""),
        "CorrelationId": pc.if_else(pa.array(upgraded[l_of]), _pick(gen, l_of), _pick(cid, l_of)),
    })

    # One link to the external ID per trace, and one to the generated ID of an upgraded trace.
    link_of = np.concatenate([np.arange(count), np.flatnonzero(upgraded)])
    external = np.arange(len(link_of)) < count
    links_table = pa.table({
        "TraceId": _pick(trace_ids, link_of),
        "CorrelationId": pc.if_else(pa.array(external), _pick(cid, link_of), _pick(gen, link_of)),
        "Source": pc.if_else(pa.array(external), "resource", "generated"),
        "Priority": pa.array(np.where(external, 0, 6).astype(np.uint8)),
        "FirstSeen": pa.array(start[link_of], pa.timestamp("ns")),
        "LastSeen": pa.array(start[link_of] + spans * SPAN_GAP_NS, pa.timestamp("ns")),
    })

    e_of = np.flatnonzero(traces % 10 == 0)
    n = len(e_of)
    exemplars_table = pa.table({
        "Timestamp": pa.array(start[e_of], pa.timestamp("ns")),
        "MetricName": _constant("http.server.request.duration", n),
        "MetricType": _constant("histogram", n),
        "ServiceName": _constant(SERVICES[0], n),
        "Value": pa.array(np.full(n, 12.5)),
        "TraceId": _pick(trace_ids, e_of),
        "SpanId": _pick(root, e_of),
        "CorrelationId": _pick(cid, e_of),
    })
    return {"otel_traces": spans_table, "otel_logs": logs_table, "ollystack_trace_links": links_table,
            "metric_exemplars": exemplars_table}


def load(wh: Warehouse, first: int, last: int, spans: int, block: int, newest_ns: int, seed: int) -> float:
    """Store traces ``first`` .. ``last - 1``; the seconds it took."""
    started = time.perf_counter()
    for at in range(first, last, block):
        rng = np.random.default_rng([seed, at])
        insert_tables(wh, trace_block(at, min(block, last - at), spans, newest_ns, rng), None)
    return time.perf_counter() - started


def prepare_rollups(wh: Warehouse) -> float:
    """Bring the services endpoints' rollup tables up to date with the rows just stored, as the
    worker's periodic refresh would; returns the seconds it took."""
    report = refresh_rollups(wh, margin_s=0, until_done=True)
    return report.seconds


def quantiles(samples_ms: list[float]) -> dict[str, float]:
    """Nearest-rank p50, p95 and p99."""
    ordered = sorted(samples_ms)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(np.ceil(q * len(ordered))) - 1))], 2)

    return {"p50_ms": rank(0.5), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


async def measure_lookups(client: httpx.AsyncClient, wh: Warehouse, ids: list[str]) -> dict[str, Any]:
    http_ms, query_ms, resolve_ms, spans_seen = [], [], [], []
    scope, limits = QueryScope(wh.database), Limits()
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
        # The first of the lookup's two statements alone (ID -> traces); the rest of the
        # query time is the one that reads spans, logs and exemplars.
        started = time.perf_counter()
        await resolve_traces(wh, scope, cid, limits.max_lookup_traces + 1)
        resolve_ms.append((time.perf_counter() - started) * 1000)
    return {"http": quantiles(http_ms), "query": quantiles(query_ms), "resolve": quantiles(resolve_ms),
            "spans_per_lookup": round(sum(spans_seen) / len(spans_seen), 1)}


async def measure_services(client: httpx.AsyncClient, requests: int, newest_ns: int) -> dict[str, Any]:
    # Windows end at the newest trace's start, not at the clock: reused data keeps the time
    # it was stored with, and a window past it would measure an empty answer.
    end_ms = newest_ns // 1_000_000 + 1
    windows: dict[str, dict[str, str]] = {name: {"start": str(end_ms - ms), "end": str(end_ms)}
                                          for name, ms in (("1h", HOUR_MS), ("24h", DAY_MS))}
    out: dict[str, Any] = {}
    for path in ("/api/v1/services", "/api/v1/service-map"):
        for name, params in windows.items():
            (await client.get(path, params=params)).raise_for_status()  # warm-up
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.get(path, params=params)
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            out[f"{path.rsplit('/', 1)[1]}_{name}"] = quantiles(samples)
    return out


async def measure(wh: Warehouse, ids: list[str], service_requests: int, newest_ns: int) -> dict[str, Any]:
    app = create_app(Settings(), wh, cache_ttl_s=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        return {"lookup": await measure_lookups(client, wh, ids),
                **await measure_services(client, service_requests, newest_ns)}


def growth(first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """last / first for every latency figure."""
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = growth(value, last[key])
        elif key.endswith("_ms") and value:
            out[key.replace("_ms", "_x")] = round(last[key] / value, 2)
    return out


# Issue #12's goals, at the largest size: p99 over HTTP (cache off) for a lookup and for the
# services endpoints over their default window.
GOAL_P99_MS = 50.0
GOALS = (("lookup_http", ("lookup", "http")), ("services_1h", ("services_1h",)),
         ("service_map_1h", ("service-map_1h",)))


def goals(last: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each goal's p99 at ``last`` (one size's results), its ratio to the goal and whether it is met."""
    out = {}
    for name, path in GOALS:
        figures = last
        for key in path:
            figures = figures[key]
        p99 = float(figures["p99_ms"])
        out[name] = {"p99_ms": p99, "goal_ms": GOAL_P99_MS, "ratio": round(p99 / GOAL_P99_MS, 2),
                     "met": p99 <= GOAL_P99_MS}
    return out


def counts(wh: Warehouse) -> dict[str, int]:
    found = {t: int(wh.query(f"SELECT count() AS n FROM {wh.database}.{t}")[0]["n"]) for t in TABLES}
    # Parts a read probes: of the Collector's span table, and of the lookup copy lookups read.
    for key, table in (("span_parts", "otel_traces"), ("lookup_copy_parts", "ollystack_trace_rows")):
        found[key] = int(wh.query(
            "SELECT count() AS n FROM system.parts WHERE database = {d:String} AND table = {t:String} AND active",
            {"d": wh.database, "t": table})[0]["n"])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="span counts to measure at, ascending")
    parser.add_argument("--spans-per-trace", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--service-requests", type=int, default=10,
                        help="requests per services endpoint and window (a request reads up to a day of spans)")
    parser.add_argument("--block-traces", type=int, default=10_000, help="traces per insert")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="chDB folder (default: a new temp folder); data already there is reused")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="ollystack-bench-"))
    wh = open_warehouse(ClickHouseSettings(database="bench"), data_dir)
    migrate(wh, ClickHouseSettings())
    stored = counts(wh)["otel_traces"] // args.spans_per_trace
    # The newest trace starts now; reused data keeps the time it was stored with.
    newest_ns = time.time_ns() if stored == 0 else int(wh.query(
        "SELECT toUnixTimestamp64Nano(max(Timestamp)) AS t FROM bench.otel_traces")[0]["t"]) - \
        (args.spans_per_trace - 1) * SPAN_GAP_NS
    rng = np.random.default_rng(args.seed + 1)
    results = []
    for size in sizes:
        traces = size // args.spans_per_trace
        insert_s = None
        if stored < traces:
            insert_s = round(load(wh, stored, traces, args.spans_per_trace, args.block_traces, newest_ns, args.seed), 1)
            stored = traces
        rollup_s = round(prepare_rollups(wh), 1)
        id_count = traces // TRACES_PER_BLOCK * IDS_PER_BLOCK + min(traces % TRACES_PER_BLOCK, IDS_PER_BLOCK)
        ids = [external_id(int(n)) for n in rng.integers(0, id_count, args.lookups)]
        results.append({"spans": size, "correlation_ids": id_count, "insert_s": insert_s,
                        "rollup_refresh_s": rollup_s, "stored": counts(wh),
                        **asyncio.run(measure(wh, ids, args.service_requests, newest_ns))})
    if args.data_dir is None:  # a temp folder of our own: free the space
        wh.execute("DROP DATABASE bench SYNC")
    met = goals(results[-1])
    print(json.dumps({
        "benchmark": "correlation_lookup", "backend": "chdb", "lookups": args.lookups,
        "service_requests": args.service_requests, "sizes": results, "goals": met,
        "growth": growth({k: v for k, v in results[0].items() if isinstance(v, dict) and k != "stored"},
                         results[-1]) if len(results) > 1 else None,
        "data_dir": str(data_dir) if args.data_dir else None,
    }))
    return 0 if all(goal["met"] for goal in met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
