"""Attribute, word and correlation-list search latency over a million spans and logs in chDB.

Usage: ``python benchmarks/search.py [--spans 1000000] [--logs 1000000] [--repeat 20] [--data-dir DIR]``

Stores spans over one hour (8 services x 10 operations, 50 routes, 100k customer IDs, one
correlation ID per 100 spans, about 2 % errors, so the correlation index gets 10k IDs through
its views) and logs whose bodies hold words from a 5000-word vocabulary. Then times searches
through the API app (HTTP over ASGI) and, for each attribute or word filter, the granules its
skip indexes leave and a plain ``count()`` with the indexes on and off. Prints one JSON object;
latencies in milliseconds.
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

from api.app import create_app  # noqa: E402
from api.conditions import parse_conditions  # noqa: E402
from api.params import body_tokens  # noqa: E402
from api.queries.attributes import conditions_filter  # noqa: E402
from core.settings import ClickHouseSettings, Settings  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.warehouse import Warehouse  # noqa: E402

HOUR_NS = 3600 * 10**9
NOW_NS = (time.time_ns() // HOUR_NS) * HOUR_NS  # the API's "now"; the data fills the hour before it
SPANS_SQL = """
INSERT INTO bench.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    ResourceAttributes, SpanAttributes, Duration, StatusCode, CorrelationId)
SELECT fromUnixTimestamp64Nano(toInt64({start_ns:Int64} + intDiv(number * 3600000, {n:UInt64}) * 1000000)),
    lower(hex(cityHash64(intDiv(number, 10), 't'))) || lower(hex(cityHash64(intDiv(number, 10), 'u'))),
    lower(hex(cityHash64(number, 's'))), if(number % 10 = 0, '', lower(hex(cityHash64(number - number % 10, 's')))),
    concat('op-', toString(number % 10)), 'Server', concat('svc-', toString(intDiv(number, 10) % 8)),
    map('service.name', concat('svc-', toString(intDiv(number, 10) % 8)),
        'deployment.environment.name', if(number % 3 = 0, 'prod', 'staging')),
    map('http.route', concat('/r', toString(number % 50)), 'customer.id', toString(cityHash64(number) % 100000),
        'http.response.status_code', if(cityHash64(number, 'e') % 50 = 0, '500', '200')),
    cityHash64(number, 'd') % 2000000000, if(cityHash64(number, 'e') % 50 = 0, 'Error', 'Ok'),
    concat('order-', toString(intDiv(number, 100)))
FROM numbers({n:UInt64})
"""
LOGS_SQL = """
INSERT INTO bench.otel_logs (Timestamp, TraceId, SpanId, SeverityText, SeverityNumber, ServiceName, Body,
    ResourceAttributes, LogAttributes)
SELECT fromUnixTimestamp64Nano(toInt64({start_ns:Int64} + intDiv(number * 3600000, {n:UInt64}) * 1000000)),
    '', '', 'INFO', 9, concat('svc-', toString(number % 8)),
    concat('Handled request for order ', toString(number), ' with word', toString(cityHash64(number) % 5000),
           ' and word', toString(cityHash64(number, 'b') % 5000)),
    map('service.name', concat('svc-', toString(number % 8))), map('order.id', toString(number))
FROM numbers({n:UInt64})
"""


def load(wh: Warehouse, spans: int, logs: int) -> float:
    started = time.perf_counter()
    wh.execute(SPANS_SQL, {"start_ns": NOW_NS - HOUR_NS, "n": spans})
    wh.execute(LOGS_SQL, {"start_ns": NOW_NS - HOUR_NS, "n": logs})
    return time.perf_counter() - started


def quantiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {"p50_ms": round(ordered[len(ordered) // 2], 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)}


def granules(wh: Warehouse, sql: str, params: dict[str, Any]) -> str:
    """'selected/total' granules after the skip indexes, from EXPLAIN indexes = 1."""
    lines = [row["explain"].strip() for row in wh.query(f"EXPLAIN indexes = 1 {sql}", params)]
    found = [line.split(": ", 1)[1] for line in lines if line.startswith("Granules:")]
    return found[-1] if found else "?"


def timed(wh: Warehouse, sql: str, params: dict[str, Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        wh.query(sql, params)
        samples.append((time.perf_counter() - started) * 1000)
    return quantiles(samples)["p50_ms"]


def index_effect(wh: Warehouse, table: str, where: str, params: dict[str, Any], repeat: int) -> dict[str, Any]:
    sql = f"SELECT count() AS n FROM bench.{table} WHERE 1 = 1{where}"
    return {"granules": granules(wh, sql, params), "count_ms_index": timed(wh, sql, params, repeat),
            "count_ms_no_index": timed(wh, sql + " SETTINGS use_skip_indexes = 0", params, repeat),
            "rows": wh.query(sql, params)[0]["n"]}


async def api_ms(client: httpx.AsyncClient, url: str, params: dict[str, str], repeat: int) -> dict[str, Any]:
    samples, listed = [], 0
    for _ in range(repeat + 1):
        started = time.perf_counter()
        response = await client.get(url, params=params)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        listed = len(next(v for v in response.json().values() if isinstance(v, list)))
    return {**quantiles(samples[1:]), "listed": listed}


TRACE_TAGS = ("customer.id=4242", "span.customer.id=4242 resource.deployment.environment.name=prod",
              "http.route=/r7 http.response.status_code>=500", "customer.id>99990")
LOG_WORDS = ("424242", "word1234", "word1234 word77")  # an order number (one log), a common word, two


async def measure(wh: Warehouse, repeat: int) -> dict[str, Any]:
    app = create_app(Settings(), wh, cache_ttl_s=0, clock_ns=lambda: NOW_NS)
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for tags in TRACE_TAGS:
            where, params = conditions_filter(parse_conditions(tags, "tags", "span"), "SpanAttributes")
            out[f"traces tags={tags}"] = {**await api_ms(client, "/api/v1/traces", {"tags": tags}, repeat),
                                          **index_effect(wh, "otel_traces", where, params, repeat)}
        for words in LOG_WORDS:
            tokens = body_tokens(words, "tokens")
            where = "".join(f" AND hasToken(lower(Body), {{t{i}:String}})" for i in range(len(tokens)))
            params = {f"t{i}": t for i, t in enumerate(tokens)}
            out[f"logs tokens={words}"] = {**await api_ms(client, "/api/v1/logs", {"tokens": words}, repeat),
                                           **index_effect(wh, "otel_logs", where, params, repeat)}
        out["logs text=order 424242 "] = await api_ms(client, "/api/v1/logs", {"text": "order 424242 "}, repeat)
        # The searches the API had before, for scale.
        out["traces service=svc-3"] = await api_ms(client, "/api/v1/traces", {"service": "svc-3"}, repeat)
        out["logs (no filter)"] = await api_ms(client, "/api/v1/logs", {}, repeat)
        for sort in ("recent", "failing", "slow"):
            out[f"correlations sort={sort}"] = await api_ms(client, "/api/v1/correlations",
                                                            {"sort": sort, "limit": "100"}, repeat)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=None, help="chDB folder (default: a new temp folder)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="ollystack-bench-"))
    wh = open_warehouse(ClickHouseSettings(database="bench"), data_dir)
    migrate(wh, ClickHouseSettings())
    wh.execute("TRUNCATE TABLE bench.otel_traces")
    wh.execute("TRUNCATE TABLE bench.otel_logs")
    wh.execute("TRUNCATE TABLE bench.ollystack_correlation_index")
    insert_s = round(load(wh, args.spans, args.logs), 1)
    ids = wh.query("SELECT uniqExact(CorrelationId) AS n FROM bench.ollystack_correlation_index")[0]["n"]
    result = asyncio.run(measure(wh, args.repeat))
    wh.execute("DROP DATABASE bench SYNC")
    print(json.dumps({"benchmark": "search", "backend": "chdb", "spans": args.spans, "logs": args.logs,
                      "correlation_ids": ids, "repeat": args.repeat, "insert_s": insert_s, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
