"""Request analysis over data that went through the real pipeline: OpenTelemetry SDK
exporters -> gateway -> Kafka -> worker -> chDB -> API, for a trace with a known slow leaf
and a known failing leaf."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

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
from opentelemetry.trace import Status, StatusCode

from api.app import create_app
from core.settings import OtlpSettings, Settings
from pipeline.demo import Faults, run_demo
from pipeline.gateway.service import Gateway
from sinks.warehouse import Warehouse
from tests.support.builders import settings_for, wait_until
from tests.support.pipeline import running_pipeline

pytestmark = pytest.mark.asyncio
CORRELATION_ID = "e2e-rca-order-7"
MS = 1_000_000
SERVICES = ("api-gateway", "order-service", "inventory-service", "payment-service")


@pytest_asyncio.fixture
async def pipeline(kafka_bootstrap: str, unique: str, tmp_path: Path,
                   warehouse: Warehouse) -> AsyncIterator[tuple[Settings, Gateway]]:
    settings = settings_for(unique, tmp_path, warehouse.database).model_copy(
        update={"otlp": OtlpSettings(grpc_port=0, http_port=0)})
    async with running_pipeline(settings, kafka_bootstrap, warehouse, unique) as gateway:
        yield settings, gateway


def send_order(endpoint: str) -> dict[str, str]:
    """api-gateway -> order-service, which calls inventory-service (slow: 400 of the 500 ms)
    and then payment-service (fails: card declined, with an error log); order-service and
    the gateway fail after it. Span times are set, so the expected path is exact. Returns
    span IDs by service, and the trace ID under "trace"."""
    providers = {}
    for service in SERVICES:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        providers[service] = provider
    logs = LoggerProvider(resource=Resource.create({"service.name": "payment-service"}))
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
    t0 = time.time_ns() - 1000 * MS

    def start(service: str, name: str, at_ms: int, parent: trace.Span | None = None) -> trace.Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        return providers[service].get_tracer("e2e").start_span(
            name, context=context, kind=trace.SpanKind.SERVER, start_time=t0 + at_ms * MS,
            attributes={"correlation_id": CORRELATION_ID} if parent is None else None)

    try:
        root = start("api-gateway", "POST /checkout", 0)
        order = start("order-service", "POST /orders", 10, root)
        stock = start("inventory-service", "reserve stock", 20, order)
        stock.end(end_time=t0 + 420 * MS)
        charge = start("payment-service", "charge card", 425, order)
        with trace.use_span(charge):
            logs.get_logger("e2e").emit(severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                                        body="card declined by issuer", timestamp=t0 + 460 * MS)
        charge.set_status(Status(StatusCode.ERROR, "card declined"))
        charge.end(end_time=t0 + 470 * MS)
        order.set_status(Status(StatusCode.ERROR, "payment failed"))
        order.end(end_time=t0 + 480 * MS)
        root.set_status(Status(StatusCode.ERROR, "502 from order-service"))
        root.end(end_time=t0 + 500 * MS)
    finally:
        for provider in providers.values():
            provider.shutdown()
        logs.shutdown()
    ids = {service: format(span.get_span_context().span_id, "016x")
           for service, span in zip(SERVICES, (root, order, stock, charge), strict=True)}
    return {**ids, "trace": format(root.get_span_context().trace_id, "032x")}


def stored(warehouse: Warehouse, table: str) -> int:
    return warehouse.query(f"SELECT count() AS n FROM {warehouse.database}.{table} FINAL")[0]["n"]


async def test_the_slow_leaf_and_the_failing_leaf_are_found(pipeline: tuple[Settings, Gateway],
                                                            warehouse: Warehouse) -> None:
    settings, gateway = pipeline
    ids = await asyncio.to_thread(send_order, f"127.0.0.1:{gateway.grpc_port}")
    await wait_until(lambda: stored(warehouse, "otel_traces") == 4 and stored(warehouse, "otel_logs") == 1,
                     what="4 spans and 1 log stored")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, warehouse)),
                                 base_url="http://api") as client:
        response = await client.post("/api/v1/rca", json={"correlation_id": CORRELATION_ID})
        assert response.status_code == 200, response.text
        found = response.json()
        by_trace = (await client.post("/api/v1/analyze", json={"trace_id": ids["trace"]})).json()

    assert [(s["service"], s["span_id"], s["self_time_ms"]) for s in found["critical_path"]] == [
        ("api-gateway", ids["api-gateway"], 30.0), ("order-service", ids["order-service"], 25.0),
        ("inventory-service", ids["inventory-service"], 400.0), ("payment-service", ids["payment-service"], 45.0)]
    assert found["critical_path_ms"] == 500.0
    slowest = max(found["critical_path"], key=lambda s: s["self_time_ms"])
    assert (slowest["span_id"], slowest["operation"], slowest["share"]) == (
        ids["inventory-service"], "reserve stock", 0.8)
    origin = found["error_origin"]
    assert (origin["span_id"], origin["service"], origin["operation"], origin["message"]) == (
        ids["payment-service"], "payment-service", "charge card", "card declined")
    assert [log["body"] for log in origin["logs"]] == ["card declined by issuer"]
    assert found["root_cause"] == {"service": "payment-service", "operation": "charge card", "kind": "error",
                                   "confidence": 1.0, "span_id": ids["payment-service"], "trace_id": ids["trace"]}
    latency = found["findings"][1]
    assert (latency["kind"], latency["span_id"], latency["confidence"]) == ("latency", ids["inventory-service"], 0.8)
    assert found["evidence"]["services"] == sorted(SERVICES)
    assert by_trace["correlation_id"] == CORRELATION_ID
    assert (by_trace["critical_path"], by_trace["error_origin"]) == (found["critical_path"], found["error_origin"])


async def test_demo_faults_are_found_in_every_request(pipeline: tuple[Settings, Gateway], warehouse: Warehouse) -> None:
    settings, gateway = pipeline
    faults = Faults(slow=frozenset({"payment-service"}), fail={"inventory-service": 1.0, "payment-service": 0.0})
    result = await asyncio.to_thread(run_demo, f"127.0.0.1:{gateway.grpc_port}",
                                     f"http://127.0.0.1:{gateway.http_port}", "grpc", 10.0, 1.5, faults, seed=5)
    assert result.flows >= 10 and result.spans_not_sent == 0
    await wait_until(lambda: stored(warehouse, "otel_traces") == result.spans, what=f"{result.spans} spans stored")
    traces = [row["TraceId"] for row in warehouse.query(
        f"SELECT DISTINCT TraceId FROM {warehouse.database}.otel_traces ORDER BY TraceId")]
    assert len(traces) == result.flows
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, warehouse)),
                                 base_url="http://api") as client:
        for trace_id in traces:
            response = await client.post("/api/v1/rca", json={"trace_id": trace_id})
            assert response.status_code == 200, response.text
            found = response.json()
            origin, latency = found["error_origin"], found["findings"][1]
            # The cache call of inventory-service fails first; the gateway's 502 is the symptom.
            assert (origin["service"], origin["operation"], origin["message"]) == (
                "inventory-service", "GET stock:*", "cache connection refused")
            assert found["root_cause"]["service"] == "inventory-service"
            assert (latency["kind"], latency["service"], latency["operation"]) == (
                "latency", "payment-service", "POST /charge")
            assert latency["confidence"] > 0.8
