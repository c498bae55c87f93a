"""Kafka stopped under the gateway: retryable errors, backpressure, and nothing lost or doubled."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline.gateway import Gateway
from pipeline.local_broker import LocalKafkaBroker, free_port
from tests.support.gateway import read_raw, running_gateway, sdk_exporters

ACK_TIMEOUT_S = 2.0
REQUEST_BYTES = 600 * 1024
PROTO = {"content-type": "application/x-protobuf"}


def _probe_request(first_id: int, n: int = 1, name_bytes: int = 10) -> ExportTraceServiceRequest:
    """Spans with IDs far from the SDK's random ones, to prove they never reach the topic."""
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(first_id, first_id + n):
        spans.add(trace_id=b"\xee" * 8 + i.to_bytes(8, "big"), span_id=i.to_bytes(8, "big"), name="p" * name_bytes)
    return req


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _unavailable(gateway: Gateway) -> float:
    return sum(gateway.metrics.value("ollystack_gateway_requests_total",
                                     {"signal": "traces", "protocol": p, "code": "UNAVAILABLE"})
               for p in ("grpc", "http"))


async def _check_backpressure_and_unavailable(gateway: Gateway, http: httpx.AsyncClient,
                                              stub: trace_service_pb2_grpc.TraceServiceStub) -> None:
    big = _probe_request(1, 1, REQUEST_BYTES).SerializeToString()
    holder = asyncio.create_task(http.post("/v1/traces", content=big, headers=PROTO))
    await _until(lambda: gateway.metrics.value("ollystack_gateway_inflight_bytes") > 0, 10, "bytes in flight")
    # The first request holds most of the in-flight budget while it waits for Kafka.
    busy = await http.post("/v1/traces", content=_probe_request(2, 1, REQUEST_BYTES).SerializeToString(),
                           headers=PROTO)
    assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
    with pytest.raises(grpc.aio.AioRpcError) as busy_grpc:
        await stub.Export(_probe_request(3, 1, REQUEST_BYTES))
    assert busy_grpc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    held = await holder
    assert held.status_code == 503 and held.headers["retry-after"] == "1"
    assert "did not acknowledge" in status_pb2.Status.FromString(held.content).message
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await stub.Export(_probe_request(4))
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(down.value.trailing_metadata())
    details = status_pb2.Status.FromString(trailers["grpc-status-details-bin"]).details
    info = error_details_pb2.RetryInfo()
    # The hint grows with the outage: Kafka has been failing for an ack timeout since the first
    # refusal, so the SDK's few attempts are spread over a longer outage.
    assert details[0].Unpack(info) and ACK_TIMEOUT_S <= info.retry_delay.seconds + info.retry_delay.nanos / 1e9 <= 30
    assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]) == info


def _sdk_spans(traces: int, spans_per_trace: int = 4) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("outage")
    for t in range(traces):
        with tracer.start_as_current_span(f"root-{t}"):
            for s in range(spans_per_trace - 1):
                tracer.start_span(f"child-{s}").end()
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.asyncio
async def test_broker_stopped_during_sends(tmp_path: Path, unique: str) -> None:
    data_dir, port = tmp_path / "kafka", free_port()
    broker = LocalKafkaBroker(data_dir, port=port, message_max_bytes=4 * 1024 * 1024)
    await asyncio.to_thread(broker.start)
    try:
        async with running_gateway(broker.bootstrap, unique, ack_timeout_s=ACK_TIMEOUT_S,
                                   max_request_bytes=1024 * 1024, max_inflight_bytes=8 * 1024 * 1024) as gateway, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=30) as http, \
                grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            before, during_grpc, during_http = _sdk_spans(5), _sdk_spans(7), _sdk_spans(6)
            # A timeout long enough for the SDK's own retries to outlast the broker restart.
            grpc_exp, _, _ = sdk_exporters("grpc", True, gateway, timeout_s=60)
            http_exp, _, _ = sdk_exporters("http", False, gateway, timeout_s=60)
            try:
                assert await asyncio.to_thread(grpc_exp.export, before) == SpanExportResult.SUCCESS
                await asyncio.to_thread(broker.stop)
                await _check_backpressure_and_unavailable(
                    gateway, http, trace_service_pb2_grpc.TraceServiceStub(channel))
                seen = _unavailable(gateway)
                sends = [asyncio.create_task(asyncio.to_thread(grpc_exp.export, during_grpc)),
                         asyncio.create_task(asyncio.to_thread(http_exp.export, during_http))]
                # Both SDK exporters were told UNAVAILABLE at least once before Kafka returns.
                await _until(lambda: _unavailable(gateway) >= seen + 2, 15, "both exporters refused")
                broker = LocalKafkaBroker(data_dir, port=port, message_max_bytes=4 * 1024 * 1024)
                await asyncio.to_thread(broker.start)
                assert await asyncio.gather(*sends) == [SpanExportResult.SUCCESS] * 2
            finally:
                grpc_exp.shutdown()
                http_exp.shutdown()
            sent = {s.context.span_id.to_bytes(8, "big") for s in before + during_grpc + during_http}
            records = await read_raw(broker.bootstrap, gateway.config.spans_topic, "traces", until_items=len(sent))
            on_topic = [s.span_id for r in records for rs in r.request.resource_spans
                        for ss in rs.scope_spans for s in ss.spans]
            assert len(on_topic) == len(sent) and set(on_topic) == sent
    finally:
        await asyncio.to_thread(broker.stop)
