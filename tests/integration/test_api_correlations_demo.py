"""`ollystack demo` traffic with failing payments through the real SDK, gateway, broker, worker and
chDB: /api/v1/correlations?sort=failing lists the failed flows' correlation IDs first."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from core.settings import OtlpSettings, Settings
from pipeline.demo import Faults, run_demo
from pipeline.gateway.service import Gateway
from sinks.warehouse import Warehouse
from tests.support.builders import settings_for, wait_until
from tests.support.pipeline import running_pipeline

pytestmark = pytest.mark.asyncio
# Payments fail often and nothing else fails, so a flow fails exactly when its payment does.
FAULTS = Faults(fail={"payment-service": 0.4, "inventory-service": 0.0})


@pytest_asyncio.fixture
async def pipeline(kafka_bootstrap: str, unique: str, tmp_path: Path,
                   warehouse: Warehouse) -> AsyncIterator[tuple[Settings, Gateway]]:
    settings = settings_for(unique, tmp_path, warehouse.database).model_copy(
        update={"otlp": OtlpSettings(grpc_port=0, http_port=0)})
    async with running_pipeline(settings, kafka_bootstrap, warehouse, unique) as gateway:
        yield settings, gateway


def count(warehouse: Warehouse, sql: str) -> int:
    return int(warehouse.query(sql.format(db=warehouse.database))[0]["n"])


@pytest.mark.timeout(180)
async def test_failing_demo_flows_are_listed_first(pipeline: tuple[Settings, Gateway], warehouse: Warehouse) -> None:
    settings, gateway = pipeline
    result = await asyncio.to_thread(run_demo, f"127.0.0.1:{gateway.grpc_port}", f"http://127.0.0.1:{gateway.http_port}",
                                     "grpc", 20.0, 2.0, FAULTS, seed=5)
    assert result.spans_not_sent == 0 and result.logs_not_sent == 0 and 0 < result.failed_flows < result.flows
    await wait_until(lambda: count(warehouse, "SELECT count() AS n FROM {db}.otel_traces FINAL") == result.spans
                     and count(warehouse, "SELECT count() AS n FROM {db}.otel_logs FINAL") == result.logs,
                     what=f"{result.spans} spans and {result.logs} logs stored")
    db = warehouse.database
    failing_traces = {r["TraceId"] for r in warehouse.query(
        f"SELECT DISTINCT TraceId FROM {db}.otel_traces FINAL WHERE StatusCode = 'Error'")}
    assert len(failing_traces) == result.failed_flows
    # The IDs the demo gave its flows (baggage), by whether the flow failed.
    demo_ids = {r["CorrelationId"]: r["TraceId"] in failing_traces for r in warehouse.query(
        f"SELECT DISTINCT TraceId, CorrelationId FROM {db}.ollystack_trace_links "
        "WHERE startsWith(CorrelationId, 'demo-')")}
    failed_ids = {cid for cid, failed in demo_ids.items() if failed}
    assert failed_ids and len(failed_ids) < len(demo_ids)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, warehouse)),
                                 base_url="http://api") as client:
        response = await client.get("/api/v1/correlations", params={"sort": "failing", "limit": "1000"})
        only = {flag: (await client.get("/api/v1/correlations", params={"has_errors": flag, "limit": "1000"}))
                .json()["correlations"] for flag in ("true", "false")}
    assert response.status_code == 200, response.text
    listed = response.json()["correlations"]
    assert response.json()["next_offset"] is None and set(demo_ids) <= {c["correlation_id"] for c in listed}
    errors = [c["error_count"] for c in listed]
    first_clean = errors.index(0)
    assert errors == sorted(errors, reverse=True) and all(e > 0 for e in errors[:first_clean])
    assert failed_ids <= {c["correlation_id"] for c in listed[:first_clean]}
    assert not (set(demo_ids) - failed_ids) & {c["correlation_id"] for c in listed[:first_clean]}
    for item in listed:
        assert item["link"] == f"/api/v1/correlate/{item['correlation_id']}"
        if item["correlation_id"] in failed_ids:  # the root span answered 502 under the demo's ID
            assert item["error_spans"] >= 1 and "api-gateway" in item["services"]
    # has_errors splits the same list in two: the failing IDs, and the rest.
    assert {c["correlation_id"] for c in only["true"]} == {c["correlation_id"] for c in listed[:first_clean]}
    assert {c["correlation_id"] for c in only["false"]} == {c["correlation_id"] for c in listed[first_clean:]}
