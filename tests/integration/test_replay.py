"""Replay: rebuild dropped tables from the raw topics; replays never duplicate rows."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from core.settings import ClickHouseSettings
from pipeline.replay import Position, parse_position, run_replay
from pipeline.topics import ensure_topics, topic_specs
from pipeline.worker import build_worker
from sinks.migrations import migrate
from sinks.warehouse import Warehouse
from tests.support.builders import (
    T0,
    log_record,
    logs_request,
    settings_for,
    span,
    traces_request,
    wait_until,
)

SPANS_SQL = "SELECT TraceId, SpanId, CorrelationId, SpanAttributes FROM {db}.otel_traces FINAL ORDER BY TraceId, SpanId"
# A log can be enriched before the spans of its trace (another topic), so its stored ID may
# be the trace's earlier generated one; lookups show every row of a trace under the trace's
# best link, and that is what a replay must restore.
LOGS_SQL = ("SELECT l.TraceId AS TraceId, l.Body AS Body, k.id AS shown FROM {db}.otel_logs AS l FINAL "
            "LEFT JOIN (SELECT TraceId, argMin(CorrelationId, (Priority, FirstSeen)) AS id "
            "FROM {db}.ollystack_trace_links GROUP BY TraceId) AS k ON k.TraceId = l.TraceId ORDER BY TraceId, Body")


def snapshot(wh: Warehouse) -> dict[str, Any]:
    db = wh.database
    return {"spans": wh.query(SPANS_SQL.format(db=db)), "logs": wh.query(LOGS_SQL.format(db=db)),
            "raw_spans": wh.query(f"SELECT count() AS n FROM {db}.otel_traces FINAL")[0]["n"]}


@pytest.mark.asyncio
async def test_replay_restores_dropped_tables_and_never_duplicates(
        kafka_bootstrap: str, unique: str, tmp_path: Path, warehouse: Warehouse) -> None:
    settings = settings_for(unique, tmp_path, warehouse.database)
    await ensure_topics(kafka_bootstrap, topic_specs(settings.topics))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(12):
            trace = f"{i + 1:032x}"
            attrs = {"correlation_id": f"order-{i}"} if i % 3 == 0 else {}
            await producer.send_and_wait(settings.topics.spans, traces_request("svc", [
                span(trace, f"{j + 1:016x}", "" if j == 0 else f"{1:016x}", start_ns=T0 + j, http__method="GET",
                     **(attrs if j == 0 else {})) for j in range(3)]), key=trace.encode())
            await producer.send_and_wait(settings.topics.logs, logs_request("svc", [
                log_record(trace, f"{1:016x}", f"log {i}", T0 + 10)]), key=trace.encode())
    finally:
        await producer.stop()

    worker = build_worker(settings, kafka_bootstrap, warehouse, app_id=unique)
    await worker.start()
    try:
        await wait_until(lambda: snapshot(warehouse)["raw_spans"] == 36 and len(snapshot(warehouse)["logs"]) == 12,
                         what="live path stored 36 spans and 12 logs")
    finally:
        await worker.stop()
    live = snapshot(warehouse)
    assert len({r["CorrelationId"] for r in live["spans"]}) == 12

    # Replaying what the live path already stored changes nothing, twice over.
    for _ in range(2):
        await run_replay(settings, warehouse, kafka_bootstrap, "traces", Position(offset=0),
                         group_id=f"{unique}-r1", progress=False)
        await run_replay(settings, warehouse, kafka_bootstrap, "logs", Position(offset=0),
                         group_id=f"{unique}-r2", progress=False)
        assert snapshot(warehouse) == live

    # Drop every table, rebuild the schema, replay: the same rows come back.
    db = warehouse.database
    for table in [r["name"] for r in warehouse.query(
            "SELECT name FROM system.tables WHERE database = {d:String}", {"d": db})]:
        warehouse.execute(f"DROP TABLE IF EXISTS {db}.`{table}` SYNC")
    migrate(warehouse, ClickHouseSettings())
    assert snapshot(warehouse)["raw_spans"] == 0
    totals = await run_replay(settings, warehouse, kafka_bootstrap, "traces",
                              parse_position("1970-01-01T00:00:00Z", "--from"), group_id=f"{unique}-r3", progress=False)
    await run_replay(settings, warehouse, kafka_bootstrap, "logs", Position(offset=0),
                     group_id=f"{unique}-r4", progress=False)
    assert totals == {"records": 12, "rows": 36 + 12, "dead": 0}
    assert snapshot(warehouse) == live


def test_positions_are_offsets_or_times() -> None:
    from core.errors import ConfigError

    assert parse_position("42", "--from") == Position(offset=42)
    assert parse_position("2026-11-23T00:00:00Z", "--from") == Position(time_ms=1_795_392_000_000)
    with pytest.raises(ConfigError, match="--to 'yesterday'"):
        parse_position("yesterday", "--to")
