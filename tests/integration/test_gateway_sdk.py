"""The real OpenTelemetry SDK exporters (gRPC and HTTP, plain and gzip) into the raw topics."""
from __future__ import annotations

import asyncio
import http.client
from typing import Any, Literal

import pytest
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from pipeline.gateway import Gateway
from pipeline.gateway.logic import metric_points
from tests.support.gateway import read_raw, running_gateway, sdk_exporters


def make_telemetry() -> tuple[list[Any], list[Any], Any]:
    """Spans of two services in 3 traces, logs in and outside spans, metrics with exemplars."""
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    reader = InMemoryMetricReader()
    res_a = Resource.create({"service.name": "frontend", "deployment.environment.name": "test"})
    res_b = Resource.create({"service.name": "backend"})
    tp_a, tp_b = TracerProvider(resource=res_a), TracerProvider(resource=res_b)
    for tp in (tp_a, tp_b):
        tp.add_span_processor(SimpleSpanProcessor(spans))
    lp = LoggerProvider(resource=res_b)
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    mp = MeterProvider(resource=res_a, metric_readers=[reader])
    latency = mp.get_meter("test.meter").create_histogram("http.server.duration", unit="ms")
    requests = mp.get_meter("test.meter").create_counter("requests")
    logger = lp.get_logger("test.logger", "1.0")
    first_context = None
    for i in range(3):
        with tp_a.get_tracer("front").start_as_current_span(
                f"GET /item/{i}", kind=SpanKind.SERVER, attributes={"http.route": "/item", "i": i}) as edge:
            first_context = first_context or edge.get_span_context()
            edge.add_event("accepted", {"queue": "a"})
            with tp_b.get_tracer("back").start_as_current_span(
                    "SELECT", kind=SpanKind.CLIENT, links=[Link(first_context, {"why": "batch"})]) as child:
                child.set_status(Status(StatusCode.ERROR, "boom") if i == 2 else Status(StatusCode.OK))
                logger.emit(body={"msg": "querying", "correlationId": f"c-{i}"}, attributes={"i": i},
                            severity_number=SeverityNumber.INFO, severity_text="INFO",
                            context=otel_context.get_current())
            latency.record(12.5 * (i + 1), {"route": "/item"})
            requests.add(1, {"route": "/item", "code": 200 + i})
    logger.emit(body="no trace here", severity_number=SeverityNumber.WARN, severity_text="WARN")
    metrics_data = reader.get_metrics_data()
    for provider in (tp_a, tp_b, lp, mp):
        provider.shutdown()
    return list(spans.get_finished_spans()), list(logs.get_finished_logs()), metrics_data


def _by_span_id(request: Any) -> dict[bytes, tuple[Any, Any]]:
    return {span.span_id: (rs.resource, span)
            for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans}


async def _check_spans(gateway: Gateway, spans: list[Any]) -> None:
    expected = _by_span_id(encode_spans(spans))
    records = await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces",
                             until_items=len(spans))
    got: dict[bytes, tuple[Any, Any]] = {}
    for rec in records:
        in_record = _by_span_id(rec.request)
        assert {s.trace_id.hex().encode() for _, s in in_record.values()} == {rec.key}
        assert not in_record.keys() & got.keys(), "a span was written twice"
        got.update(in_record)
    assert got == expected


async def _check_logs(gateway: Gateway, logs: list[Any]) -> None:
    expected = sorted(lr.SerializeToString(deterministic=True)
                      for rl in encode_logs(logs).resource_logs for sl in rl.scope_logs for lr in sl.log_records)
    records = await read_raw(gateway.config.bootstrap, gateway.config.logs_topic, "logs", until_items=len(logs))
    got = []
    for rec in records:
        for rl in rec.request.resource_logs:
            assert rl.resource.attributes  # the envelope came along
            for lr in (lr for sl in rl.scope_logs for lr in sl.log_records):
                assert rec.key == (lr.trace_id.hex().encode() if lr.trace_id else None)
                got.append(lr.SerializeToString(deterministic=True))
    assert sorted(got) == expected


async def _check_metrics(gateway: Gateway, metrics_data: Any) -> None:
    sent = encode_metrics(metrics_data)
    expected = sorted(m.SerializeToString(deterministic=True)
                      for rm in sent.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
    points = sum(metric_points(m) for rm in sent.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
    records = await read_raw(gateway.config.bootstrap, gateway.config.metrics_topic, "metrics",
                             until_items=points)
    got = sorted(m.SerializeToString(deterministic=True) for rec in records
                 for rm in rec.request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
    assert got == expected
    assert all(rec.key is not None and len(rec.key) == 16 for rec in records)
    exemplars = [e for rec in records for rm in rec.request.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics if m.HasField("histogram") for p in m.histogram.data_points
                 for e in p.exemplars]
    assert exemplars and all(len(e.trace_id) == 16 for e in exemplars)


@pytest.mark.asyncio
@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_sdk_exporters_everything_sent_is_on_the_topics(
        kafka_bootstrap: str, unique: str, protocol: Literal["grpc", "http"], gzip: bool) -> None:
    spans, logs, metrics_data = make_telemetry()
    async with running_gateway(kafka_bootstrap, unique) as gateway:
        span_exp, log_exp, metric_exp = sdk_exporters(protocol, gzip, gateway)
        try:
            results = await asyncio.gather(
                asyncio.to_thread(span_exp.export, spans), asyncio.to_thread(log_exp.export, logs),
                asyncio.to_thread(metric_exp.export, metrics_data))
        finally:
            for exp in (span_exp, log_exp, metric_exp):
                exp.shutdown()
        assert results[0] == SpanExportResult.SUCCESS
        assert results[1].name == "SUCCESS"
        assert results[2] == MetricExportResult.SUCCESS
        await _check_spans(gateway, spans)
        await _check_logs(gateway, logs)
        await _check_metrics(gateway, metrics_data)
        accepted = gateway.metrics.value("ollystack_gateway_accepted_items_total", {"signal": "traces"})
        assert accepted == len(spans)


def big_spans(count: int, attribute_bytes: int) -> list[Any]:
    """``count`` finished spans, each with one attribute of ``attribute_bytes`` random-ish text."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bulky"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bulk")
    for i in range(count):
        with tracer.start_as_current_span(f"op-{i}") as span:
            span.set_attribute("payload", (f"{i:08x}" * (attribute_bytes // 8 + 1))[:attribute_bytes])
    provider.shutdown()
    return list(exporter.get_finished_spans())


@pytest.mark.asyncio
async def test_an_oversize_http_export_is_answered_413_and_not_retried(kafka_bootstrap: str, unique: str) -> None:
    spans = big_spans(2, 1024 * 1024)
    async with running_gateway(kafka_bootstrap, unique, max_request_bytes=1024 * 1024) as gateway:
        exporter = sdk_exporters("http", False, gateway, timeout_s=60.0)[0]
        try:
            result = await asyncio.to_thread(exporter.export, spans)
        finally:
            exporter.shutdown()
        answers = {code: gateway.metrics.value("ollystack_gateway_requests_total",
                                               {"signal": "traces", "protocol": "http", "code": code})
                   for code in ("RESOURCE_EXHAUSTED", "OK")}
    assert result is SpanExportResult.FAILURE
    # The SDK read the 413 and gave up: one request, no retries of the same payload.
    assert answers == {"RESOURCE_EXHAUSTED": 1, "OK": 0}


def post_whole_body(port: int, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """POST the way HTTP/1.1 clients do (urllib3, curl): the whole body, then the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.asyncio
async def test_a_body_far_over_the_limit_is_read_to_its_end_and_answered_413(kafka_bootstrap: str,
                                                                            unique: str) -> None:
    # 70 MiB: over the 64 MiB the SDK itself caps a batch at, as a Collector or curl may send.
    body = encode_spans(big_spans(70, 1024 * 1024)).SerializeToString()
    async with running_gateway(kafka_bootstrap, unique, max_request_bytes=1024 * 1024) as gateway:
        status, headers, answer = await asyncio.to_thread(post_whole_body, gateway.http_port, body)
    assert (status, headers["connection"]) == (413, "close")
    assert "larger than 1048576 bytes" in RpcStatus.FromString(answer).message
