"""Self-metrics and the Grafana dashboards, on one `up` (gateway, worker and API in this
process, as `ollystack up` runs them) fed by the demo through the OpenTelemetry SDK.

- every role's /metrics is scraped over HTTP and parsed with prometheus_client's parser;
- every panel's and variable's SQL runs on chDB holding that traffic, rendered as the
  ClickHouse plugin renders it, and returns rows;
- every Prometheus query of the dashboards names a metric the processes export."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from core.settings import (
    ApiSettings,
    ClickHouseSettings,
    OtlpSettings,
    RollupSettings,
    ScoreSettings,
    Settings,
    WorkerSettings,
)
from pipeline.demo import DemoResult, Faults, run_demo
from pipeline.up import ROLES, run_up
from sinks.warehouse import Warehouse
from tests.support import grafana
from tests.support.builders import settings_for, wait_until
from tests.support.warehouses import migrated_warehouse

pytestmark = pytest.mark.asyncio(loop_scope="module")
SCRAPED = ("Gateway metrics", "Worker metrics", "API metrics")
SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                   "summary": ("", "_sum", "_count")}
TABLES = ("otel_traces", "otel_logs", "ollystack_service_edges", "ollystack_service_rollup",
          "ollystack_correlation_index")


@dataclass
class Stack:
    settings: Settings
    warehouse: Warehouse
    endpoints: dict[str, str]
    demo: DemoResult


def stored(warehouse: Warehouse, sql: str) -> int:
    return int(warehouse.query(sql.format(db=warehouse.database))[0]["n"])


async def scrape(url: str) -> dict[str, Metric]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families: dict[str, Metric], sample_name: str, **labels: str) -> float:
    """The sum of ``sample_name``'s samples whose labels include ``labels``."""
    family = families[sample_name.removesuffix("_total").removesuffix("_bucket").removesuffix("_count")
                      .removesuffix("_sum")]
    return sum(s.value for s in family.samples
               if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(kafka_bootstrap: str, chdb_dir: Path) -> AsyncIterator[Stack]:
    """`up` on the session's broker and chDB (its data folder is the session's, as chDB
    allows one a process), its own topics and database, after 20 simulated seconds of demo
    traffic (sent 10 times faster) with payment-service failing a third of the time."""
    unique = "t" + uuid.uuid4().hex[:10]
    with migrated_warehouse(ClickHouseSettings(database=unique), chdb_dir) as warehouse:
        settings = settings_for(unique, chdb_dir, unique).model_copy(update={
            "kafka": Settings().kafka.model_copy(update={"bootstrap": kafka_bootstrap}),
            "otlp": OtlpSettings(grpc_port=0, http_port=0), "api": ApiSettings(port=0),
            "worker": WorkerSettings(metrics_port=0),
            "rollups": RollupSettings(interval_s=0.5, margin_s=0, minute_interval_s=0),
            "score": ScoreSettings(window_s=5, lateness_s=0, idle_partition_s=2)})
        ready: asyncio.Future[list[tuple[str, str]]] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        up = asyncio.create_task(run_up(settings, ROLES, ready=ready.set_result, stop=stop))
        try:
            await asyncio.wait({up, ready}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
            if up.done():
                up.result()  # raises what stopped it
            endpoints = dict(ready.result())
            grpc = endpoints["OTLP gRPC"]
            demo = await asyncio.to_thread(run_demo, grpc, endpoints["OTLP HTTP"], "grpc", 10.0, 20.0,
                                           Faults(fail={"payment-service": 0.3}), seed=16, speedup=10.0)
            assert demo.spans > 0 and demo.spans_not_sent == demo.logs_not_sent == 0
            await wait_until(lambda: stored(warehouse, "SELECT count() AS n FROM {db}.otel_traces FINAL")
                             == demo.spans, 90, f"{demo.spans} spans stored")
            await wait_until(lambda: stored(warehouse, "SELECT count() AS n FROM {db}.otel_logs FINAL")
                             == demo.logs, 60, f"{demo.logs} logs stored")
            # The rollups are recomputed every interval; the map's panels read them.
            rolled_up = "SELECT sum(Spans) AS n FROM {db}.ollystack_service_rollup FINAL"
            await wait_until(lambda: stored(warehouse, rolled_up) == demo.spans, 60, "every span rolled up")
            yield Stack(settings, warehouse, endpoints, demo)
        finally:
            stop.set()
            await asyncio.wait_for(up, 90)


async def test_every_role_serves_its_metrics(stack: Stack) -> None:
    gateway, worker, api = [await scrape(stack.endpoints[name]) for name in SCRAPED]
    demo = stack.demo
    assert value(gateway, "ollystack_gateway_accepted_items_total", signal="traces") == demo.spans
    assert value(gateway, "ollystack_gateway_received_items_total", signal="logs") == demo.logs
    assert value(gateway, "ollystack_gateway_produce_seconds_count", signal="traces") > 0
    assert "ollystack_gateway_inflight_bytes" in gateway

    topics = stack.settings.topics
    assert value(worker, "ollystack_enrich_items_total", signal="traces") == demo.spans
    assert value(worker, "ollystack_stage_records_in_total", stage="ingest", topic=topics.spans) > 0
    assert value(worker, "ollystack_stage_records_out_total", stage="ingest", topic=topics.enriched_spans) > 0
    assert value(worker, "ollystack_stage_records_in_total", stage="score", topic=topics.enriched_spans) > 0
    assert value(worker, "ollystack_correlation_ids_total", outcome="generated") > 0
    assert value(worker, "ollystack_correlation_ids_total", outcome="found") > 0
    assert value(worker, "ollystack_sink_insert_seconds_count", signal="traces") > 0
    assert value(worker, "ollystack_sink_batch_rows_sum", signal="traces") >= demo.spans  # and trace links
    assert value(worker, "ollystack_score_windows_total") > 0
    assert worker["ollystack_anomaly_score"].samples, "closed windows leave a score per key"
    assert {s.labels["service"] for s in worker["ollystack_anomaly_score"].samples} >= {"payment-service"}
    assert value(worker, "ollystack_open_alerts") == 0  # too few windows for a baseline
    for name in ("ollystack_deadletters", "ollystack_cardinality_overflow", "ollystack_correlation_rejected",
                 "ollystack_alerts", "ollystack_rollup_refresh_seconds"):
        assert name in worker, name

    # A partition has a lag once this worker fetched from it and committed on it. Faust commits
    # every few seconds (the score stage only when its windows close, so the enriched topic may
    # have none yet): poll until both raw topics have theirs and the raw spans' is 0.
    async def caught_up() -> bool:
        samples = (await scrape(stack.endpoints["Worker metrics"]))["ollystack_consumer_lag_records"].samples
        assert all(s.value >= 0 for s in samples), samples
        return {s.labels["topic"] for s in samples} >= {topics.spans, topics.logs} and \
            all(s.value == 0 for s in samples if s.labels["topic"] == topics.spans)
    deadline = asyncio.get_running_loop().time() + 60
    while not await caught_up():
        assert asyncio.get_running_loop().time() < deadline, "no lag of both raw topics, or raw spans lag never 0"
        await asyncio.sleep(0.5)

    async with httpx.AsyncClient(timeout=10) as client:
        base = stack.endpoints["Query API"]
        assert (await client.get(f"{base}/api/v1/services")).status_code == 200
        health = (await client.get(stack.endpoints["Worker metrics"].replace("/metrics", "/healthz"))).json()
    assert health == {"status": "ok"}
    api = await scrape(stack.endpoints["API metrics"])
    assert value(api, "ollystack_api_requests_total", route="/api/v1/services", status="200") >= 1
    assert value(api, "ollystack_api_request_duration_seconds_count", route="/api/v1/services") >= 1


async def test_openmetrics_is_served_when_asked(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for name in SCRAPED:
            response = await client.get(stack.endpoints[name],
                                        headers={"Accept": "application/openmetrics-text; version=1.0.0"})
            assert response.headers["content-type"].startswith("application/openmetrics-text"), name
            assert response.text.endswith("# EOF\n"), name


def _time_range() -> grafana.TimeRange:
    now = datetime.now(UTC)
    return grafana.TimeRange(now - timedelta(hours=1), now + timedelta(minutes=5), interval_s=10)


def _in_database(sql: str, database: str) -> str:
    # Grafana's datasource names the default database; here each test module has its own.
    for table in TABLES:
        sql = sql.replace(f"FROM {table}", f"FROM {database}.{table}")
    return sql


def _variables(warehouse: Warehouse) -> dict[str, Any]:
    """Values a user would pick: the correlation ID with the most logs, and a service."""
    db = warehouse.database
    cid = warehouse.query(f"SELECT CorrelationId FROM {db}.otel_logs WHERE CorrelationId != '' "
                          "GROUP BY CorrelationId ORDER BY count() DESC, CorrelationId LIMIT 1")[0]["CorrelationId"]
    return {"correlation_id": cid, "service": "payment-service",
            # Explore's correlations fill these from the clicked row.
            "TraceId": warehouse.query(f"SELECT TraceId FROM {db}.otel_logs WHERE CorrelationId = {{c:String}} "
                                       "LIMIT 1", {"c": cid})[0]["TraceId"],
            "CorrelationId": cid}


CLICKHOUSE_QUERIES = [q for q in grafana.all_queries() if q.datasource_type == grafana.CLICKHOUSE_PLUGIN]
PROMETHEUS_QUERIES = [q for q in grafana.all_queries() if q.datasource_type == "prometheus"]


@pytest.mark.parametrize("query", CLICKHOUSE_QUERIES, ids=[q.where for q in CLICKHOUSE_QUERIES])
async def test_every_panel_sql_returns_rows(stack: Stack, query: grafana.Query) -> None:
    sql = grafana.render(query.text, _variables(stack.warehouse), _time_range())
    rows = stack.warehouse.query(_in_database(sql, stack.warehouse.database))
    assert rows, f"{query.where}: no rows for\n{sql}"


async def test_the_datasource_correlations_return_the_logs(stack: Stack) -> None:
    (clickhouse,) = [d for d in grafana.datasources() if d["type"] == grafana.CLICKHOUSE_PLUGIN]
    values = _variables(stack.warehouse)
    for link in clickhouse["correlations"]:
        # Provisioning files write Grafana's own $ as $$ (a single $ is an environment lookup).
        raw = link["config"]["target"]["rawSql"].replace("$$", "$")
        sql = grafana.render(raw, values, _time_range())
        rows = stack.warehouse.query(_in_database(sql, stack.warehouse.database))
        field = link["config"]["field"]
        assert rows and all(row[field] == values[field] for row in rows), link["label"]


async def test_every_prometheus_query_names_an_exported_metric(stack: Stack) -> None:
    exported: set[str] = set()
    for name in SCRAPED:
        for family in (await scrape(stack.endpoints[name])).values():
            # Every series name a family can have, sampled yet or not (no dead letter yet).
            exported |= {family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
    assert PROMETHEUS_QUERIES
    for query in PROMETHEUS_QUERIES:
        names = grafana.promql_metric_names(query.text)
        assert names, query.where
        assert names <= exported, f"{query.where}: {sorted(names - exported)} not exported"
