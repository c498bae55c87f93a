"""Correlation lookups: traces found by ID through the ID-sorted table (also for links stored
before it existed), traces with no spans and traces days apart found whole, repeats never
doubled."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_api import (  # the scenario of the endpoint tests (same folder)
    A_ROOT,
    DAY_NS,
    MS,
    TRACE_A,
    TRACE_B,
    TRACE_C,
    X,
    Y,
    columns,
    get_json,
    insert_scenario,
    link,
    log,
    make_client,
    span,
    store_scenario,
)

from core.settings import ClickHouseSettings
from sinks.migrations import migrate
from sinks.warehouse import Warehouse
from tests.support.warehouses import warehouse_before

S_MS = 1000  # one second in the scenario's milliseconds


@pytest.mark.asyncio
async def test_a_trace_with_logs_only_is_found(warehouse: Warehouse) -> None:
    """No span of the trace was stored (nor a trace_id_ts row): its logs are still found."""
    trace = "7" * 32
    warehouse.insert("otel_logs", columns([
        log(trace, "71" * 8, 7200 * S_MS, "batch-job", 9, "INFO", "job started", "olly-mk2b1e-00000001"),
        log(trace, "71" * 8, 7260 * S_MS, "batch-job", 17, "ERROR", "job failed", "olly-mk2b1e-00000001"),
    ]))
    warehouse.insert("ollystack_trace_links", columns([link(trace, "job-42", "header", 2, 7200 * S_MS)]))
    async with make_client(warehouse) as client:
        ctx = await get_json(client, "/api/v1/correlate/job-42")
    assert sorted(lg["body"] for lg in ctx["logs"]) == ["job failed", "job started"]
    assert ctx["summary"]["spans"] == 0


@pytest.mark.asyncio
async def test_rows_of_traces_days_apart_and_logs_after_the_last_span_start_are_found(warehouse: Warehouse) -> None:
    """Two traces of one ID in different days (partitions), one with a long span whose logs
    come well after the last span start."""
    cid = "order-spread-1"
    early, late = "5" * 32, "6" * 32
    day_ms = DAY_NS // MS
    warehouse.insert("otel_traces", columns([
        span(early, "51" * 8, "", -2 * day_ms, 20, "frontend", "POST /checkout", "Server", cid),
        span(late, "61" * 8, "", 0, 50 * S_MS, "importer", "POST /import", "Server", cid),
        span(late, "62" * 8, "61" * 8, 1 * S_MS, 49 * S_MS, "importer", "load rows", "Internal", cid),
    ]))
    warehouse.insert("otel_logs", columns([
        log(early, "51" * 8, -2 * day_ms + 5, "frontend", 9, "INFO", "checkout started", cid),
        log(late, "62" * 8, 45 * S_MS, "importer", 9, "INFO", "rows loaded", cid),
        log("", "", 46 * S_MS, "importer", 13, "WARN", "import slow", cid),
    ]))
    async with make_client(warehouse) as client:
        ctx = await get_json(client, f"/api/v1/correlate/{cid}")
    assert sorted(t["trace_id"] for t in ctx["traces"]) == [early, late]
    assert ctx["summary"]["spans"] == 3
    assert [lg["body"] for lg in ctx["logs"]] == ["checkout started", "rows loaded", "import slow"]


@pytest.mark.asyncio
async def test_replayed_links_spans_and_logs_are_returned_once(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    # A replay stores every table again under new tokens: the links reach the ID-sorted table's
    # view a second time, and the spans and logs of trace B are stored twice.
    warehouse.insert("ollystack_trace_links", columns([
        link(TRACE_A, X, "resource", 0, 500), link(TRACE_B, X, "baggage", 3, 2000)]), dedup_token="replay-links")
    warehouse.insert("otel_traces", columns([
        span(TRACE_B, "b1" * 8, "", 2000, 80, "frontend", "POST /checkout", "Server", X)]), dedup_token="replay-b")
    async with make_client(warehouse) as client:
        ctx = await get_json(client, f"/api/v1/correlate/{X}")
    assert [t["trace_id"] for t in ctx["traces"]] == [TRACE_A, TRACE_B]
    assert (ctx["summary"]["spans"], ctx["summary"]["logs"], ctx["summary"]["traces"]) == (6, 3, 2)
    stored = warehouse.query(
        f"SELECT TraceId FROM {warehouse.database}.ollystack_correlation_traces FINAL "
        "WHERE CorrelationId = {cid:String} ORDER BY TraceId", {"cid": X})
    assert [row["TraceId"] for row in stored] == [TRACE_A, TRACE_B]


@pytest.mark.asyncio
async def test_links_stored_before_the_id_sorted_table_existed_are_found(chdb_dir: Path, unique: str) -> None:
    """A database migrated up to 0008 holds a link whose ID is on no row (only the link names
    trace C): migration 0009 copies it, so the lookup still finds the trace."""
    settings = ClickHouseSettings(database=unique)
    with warehouse_before(settings, chdb_dir, 9) as wh:
        store_scenario(wh)  # no rollup tables before 0010
        wh.insert("ollystack_trace_links", columns([link(TRACE_C, "req-linked-only", "header", 2, 3000)]))
        assert "0009_correlation_traces" in migrate(wh, settings)
        async with make_client(wh) as client:
            ctx = await get_json(client, "/api/v1/correlate/req-linked-only")
            again = await get_json(client, f"/api/v1/correlate/{Y}")
        assert [t["trace_id"] for t in ctx["traces"]] == [TRACE_C] and ctx["summary"]["spans"] == 2
        assert again["summary"]["spans"] == 2


@pytest.mark.asyncio
async def test_rows_stored_before_the_lookup_copy_existed_are_read_once(chdb_dir: Path, unique: str) -> None:
    """A database migrated up to 0011 holds the scenario's spans and logs: 0012 copies them
    into the lookup copy, the view copies a root replayed afterwards, and every read of whole
    traces returns each span once, as FINAL on otel_traces does."""
    settings = ClickHouseSettings(database=unique)
    with warehouse_before(settings, chdb_dir, 12) as wh:
        store_scenario(wh)
        assert "0012_trace_rows" in migrate(wh, settings)
        assert wh.query(f"EXISTS TABLE {unique}.ollystack_trace_spans")[0]["result"] == 0  # replaced
        wh.insert("otel_traces", columns([A_ROOT]), dedup_token="a-root-replayed-after-0012")
        stored = wh.query(f"SELECT count() AS n FROM {unique}.ollystack_trace_rows "
                          "WHERE LookupKey = {t:String} AND Kind = 1", {"t": TRACE_A})
        assert stored[0]["n"] == 6  # the root twice, until parts merge
        async with make_client(wh) as client:
            ctx = await get_json(client, f"/api/v1/correlate/{X}")
            trace = await get_json(client, f"/api/v1/traces/{TRACE_A}")
        final = wh.query(f"SELECT SpanId FROM {unique}.otel_traces FINAL WHERE TraceId IN ({{a:String}}, {{b:String}}) "
                         "ORDER BY SpanId", {"a": TRACE_A, "b": TRACE_B})
        assert sorted(s["span_id"] for s in ctx["traces"][0]["spans"] + ctx["traces"][1]["spans"]) == \
            [row["SpanId"] for row in final]
        assert len(trace["spans"]) == 5
        assert ctx["summary"]["logs"] == 3  # trace A's two, and the one without a trace stored under X
