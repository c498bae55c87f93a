"""The query API over data that went through the real pipeline: OpenTelemetry SDK exporters
-> gateway -> Kafka -> worker -> chDB -> API, checked against what the SDK sent."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from api.app import create_app
from core.settings import OtlpSettings, RollupSettings, Settings
from pipeline.demo import run_demo
from pipeline.gateway.service import Gateway
from sinks.warehouse import Warehouse
from tests.support.builders import settings_for, wait_until
from tests.support.pipeline import running_pipeline

pytestmark = pytest.mark.asyncio
CORRELATION_ID = "e2e-checkout-42"


@pytest_asyncio.fixture
async def pipeline(kafka_bootstrap: str, unique: str, tmp_path: Path,
                   warehouse: Warehouse) -> AsyncIterator[tuple[Settings, Gateway]]:
    settings = settings_for(unique, tmp_path, warehouse.database).model_copy(
        update={"otlp": OtlpSettings(grpc_port=0, http_port=0),
                "rollups": RollupSettings(interval_s=0.5, minute_interval_s=0)})
    async with running_pipeline(settings, kafka_bootstrap, warehouse, unique) as gateway:
        yield settings, gateway


def send_checkout(endpoint: str) -> tuple[list[Any], str]:
    """A root span in api-gateway carrying the ID and an error child in payment-service with
    a log; the child ends, and so is exported, before the root, as SDKs do."""
    sent = InMemorySpanExporter()
    providers = {}
    for service in ("api-gateway", "payment-service"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        provider.add_span_processor(SimpleSpanProcessor(sent))
        providers[service] = provider
    logs = LoggerProvider(resource=Resource.create({"service.name": "payment-service"}))
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
    logger = logs.get_logger("e2e")
    try:
        root = providers["api-gateway"].get_tracer("e2e").start_span(
            "POST /checkout", kind=trace.SpanKind.SERVER, attributes={"correlation_id": CORRELATION_ID})
        with trace.use_span(root, end_on_exit=True):
            with providers["payment-service"].get_tracer("e2e").start_as_current_span(
                    "charge card", kind=trace.SpanKind.SERVER, attributes={"http.method": "POST"}) as child:
                logger.emit(severity_number=SeverityNumber.ERROR, severity_text="ERROR", body="card declined")
                child.set_status(Status(StatusCode.ERROR, "declined"))
    finally:
        for provider in providers.values():
            provider.shutdown()
        logs.shutdown()
    return list(sent.get_finished_spans()), format(root.get_span_context().trace_id, "032x")


def stored(warehouse: Warehouse, table: str) -> int:
    return warehouse.query(f"SELECT count() AS n FROM {warehouse.database}.{table} FINAL")[0]["n"]


async def rolled_up(client: httpx.AsyncClient, url: str, check: Callable[[Any], bool], deadline_s: float = 60.0) -> Any:
    """``url``'s JSON once ``check`` accepts it: the worker refreshes the rollups the
    services and the map read every interval, so they catch up after the spans are stored."""
    end = time.monotonic() + deadline_s
    while True:
        found = (await client.get(url)).json()
        if check(found):
            return found
        if time.monotonic() > end:
            raise AssertionError(f"{url} not caught up within {deadline_s}s: {found!r}")
        await asyncio.sleep(0.2)


async def test_the_api_shows_what_the_sdk_sent(pipeline: tuple[Settings, Gateway], warehouse: Warehouse) -> None:
    settings, gateway = pipeline
    spans, trace_id = await asyncio.to_thread(send_checkout, f"127.0.0.1:{gateway.grpc_port}")
    assert [s.name for s in spans] == ["charge card", "POST /checkout"]
    await wait_until(lambda: stored(warehouse, "otel_traces") == 2 and stored(warehouse, "otel_logs") == 1,
                     what="2 spans and 1 log stored")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, warehouse)),
                                 base_url="http://api") as client:
        context = (await client.get(f"/api/v1/correlate/{CORRELATION_ID}")).json()
        assert context["summary"]["spans"] == 2 and context["summary"]["logs"] == 1
        assert context["summary"]["services"] == 2 and context["summary"]["error_spans"] == 1
        got_ids = {s["span_id"] for t in context["traces"] for s in t["spans"]}
        assert got_ids == {format(s.get_span_context().span_id, "016x") for s in spans}
        assert {s["correlation_id"] for t in context["traces"] for s in t["spans"]} == {CORRELATION_ID}
        assert context["logs"][0]["body"] == "card declined"

        tree = (await client.get(f"/api/v1/traces/{trace_id}")).json()
        assert tree["correlation_id"] == CORRELATION_ID
        logs = (await client.get("/api/v1/logs", params={"correlation_id": CORRELATION_ID})).json()
        assert [entry["body"] for entry in logs["logs"]] == ["card declined"]
        timeline = (await client.get(f"/api/v1/correlate/{CORRELATION_ID}/timeline")).json()
        assert [item["type"] for item in timeline["timeline"]].count("span") == 2
        impact = (await client.get(f"/api/v1/correlate/{CORRELATION_ID}/impact")).json()
        assert [f["service"] for f in impact["first_failures"]] == ["payment-service"]
        graph = await rolled_up(client, "/api/v1/service-map", lambda found: bool(found["edges"]))
        assert [(e["caller"], e["callee"], e["calls"], e["errors"]) for e in graph["edges"]] == [
            ("api-gateway", "payment-service", 1, 1)]


async def test_demo_traffic_is_counted_per_service(pipeline: tuple[Settings, Gateway], warehouse: Warehouse) -> None:
    settings, gateway = pipeline
    result = await asyncio.to_thread(run_demo, f"127.0.0.1:{gateway.grpc_port}", f"http://127.0.0.1:{gateway.http_port}",
                                     "grpc", 20.0, 2.0, seed=11)
    assert result.spans > 0 and result.spans_not_sent == 0
    await wait_until(lambda: stored(warehouse, "otel_traces") == result.spans, what=f"{result.spans} spans stored")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, warehouse)),
                                 base_url="http://api") as client:
        services = (await rolled_up(client, "/api/v1/services", lambda found: sum(
            s["spans"] for s in found["services"]) >= result.spans))["services"]
        assert sum(s["spans"] for s in services) == result.spans
        assert {"api-gateway", "order-service", "payment-service"} <= {s["service"] for s in services}
        linked = warehouse.query(f"SELECT CorrelationId FROM {warehouse.database}.ollystack_trace_links "
                                 "WHERE Source != 'generated' LIMIT 1")
        assert linked, "the demo sets a baggage correlation_id on some flows"
        context = (await client.get(f"/api/v1/correlate/{linked[0]['CorrelationId']}")).json()
        exemplars = (await client.get("/api/v1/metrics/http.server.request.duration/exemplars")).json()["exemplars"]
        assert exemplars, "the demo's duration histogram carries exemplars"
        stored_traces = {r["TraceId"] for r in warehouse.query(
            f"SELECT DISTINCT TraceId FROM {warehouse.database}.otel_traces")}
        assert {e["trace_id"] for e in exemplars} <= stored_traces
        assert context["summary"]["spans"] >= 3 and "api-gateway" in [s["name"] for s in context["services"]]
