"""OTLP/gRPC against the real broker: raw bytes, size limits, gzip, auth, empty requests."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from core.tenancy import TENANT_ATTRIBUTE
from pipeline.gateway import Gateway
from pipeline.gateway.logic import count_items
from tests.support.gateway import read_raw, running_gateway

LIMIT_BYTES = 64 * 1024
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _span_request(n: int, name_bytes: int = 10) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(n):
        spans.add(trace_id=(i % 3 + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
                  name="s" * name_bytes)
    return req


@pytest_asyncio.fixture
async def gateway(kafka_bootstrap: str, unique: str) -> AsyncIterator[Gateway]:
    async with running_gateway(kafka_bootstrap, unique, max_request_bytes=LIMIT_BYTES) as gw:
        yield gw


@pytest_asyncio.fixture
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as ch:
        yield ch


@pytest.mark.asyncio
@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip],
                         ids=["plain", "gzip"])
async def test_export_is_split_by_trace_and_acked(gateway: Gateway, channel: grpc.aio.Channel,
                                                  compression: grpc.Compression) -> None:
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    response = await stub.Export(_span_request(9), compression=compression)
    assert response == ExportTraceServiceResponse()
    records = await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces", until_items=9)
    assert sorted(r.key for r in records) == sorted((t + 1).to_bytes(16, "big").hex().encode() for t in range(3))
    assert [count_items("traces", r.request) for r in records] == [3, 3, 3]


@pytest.mark.asyncio
async def test_empty_requests_succeed(gateway: Gateway, channel: grpc.aio.Channel) -> None:
    await trace_service_pb2_grpc.TraceServiceStub(channel).Export(ExportTraceServiceRequest())
    await logs_service_pb2_grpc.LogsServiceStub(channel).Export(ExportLogsServiceRequest())
    await metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(ExportMetricsServiceRequest())
    assert gateway.metrics.value("ollystack_gateway_requests_total",
                                 {"signal": "metrics", "protocol": "grpc", "code": "OK"}) == 1


@pytest.mark.asyncio
async def test_garbage_is_invalid_argument_and_the_next_request_is_served(channel: grpc.aio.Channel) -> None:
    raw = channel.unary_unary(TRACE_METHOD)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw(b"\xff\xff\xff garbage")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot decode the traces request" in (info.value.details() or "")
    status = status_pb2.Status.FromString(dict(info.value.trailing_metadata())["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert await raw(_span_request(1).SerializeToString()) == b""


@pytest.mark.asyncio
@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip],
                         ids=["plain", "gzip"])
async def test_oversize_is_resource_exhausted(channel: grpc.aio.Channel, compression: grpc.Compression) -> None:
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    big = _span_request(1, name_bytes=LIMIT_BYTES + 1)  # compresses to almost nothing with gzip
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Export(big, compression=compression)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await stub.Export(_span_request(1)) == ExportTraceServiceResponse()


@pytest.mark.asyncio
async def test_auth_on_grpc(kafka_bootstrap: str, unique: str) -> None:
    async with running_gateway(kafka_bootstrap, unique, auth_tokens={"k-9": "globex"}) as gateway, \
            grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as ch:
        stub = trace_service_pb2_grpc.TraceServiceStub(ch)
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Export(_span_request(1), metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await stub.Export(_span_request(1), metadata=(("x-api-key", "k-9"),))
        records = await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces", until_items=1)
        attrs = {kv.key: kv.value.string_value for kv in records[0].request.resource_spans[0].resource.attributes}
        assert attrs == {TENANT_ATTRIBUTE: "globex"}


@pytest.mark.asyncio
async def test_stop_drains_requests_in_flight(kafka_bootstrap: str, unique: str) -> None:
    async with running_gateway(kafka_bootstrap, unique) as gateway:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}")
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        calls = [asyncio.ensure_future(stub.Export(_span_request(50))) for _ in range(20)]
        deadline = asyncio.get_running_loop().time() + 10
        while not gateway.metrics.value("ollystack_gateway_received_items_total", {"signal": "traces"}):
            assert asyncio.get_running_loop().time() < deadline, "no request arrived"
            await asyncio.sleep(0.005)
        await gateway.stop()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        await channel.close()
    answered_ok = [o for o in outcomes if isinstance(o, ExportTraceServiceResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert answered_ok and len(answered_ok) + len(refused) == len(calls)
    # Calls that had not reached the server are refused with a code OTLP clients retry;
    # every call that reached the export handler was finished, none cut off.
    assert {e.code() for e in refused} <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    ok_labels = {"signal": "traces", "protocol": "grpc", "code": "OK"}
    assert gateway.metrics.value("ollystack_gateway_requests_total", ok_labels) == len(answered_ok)
    assert gateway.metrics.value("ollystack_gateway_received_items_total", {"signal": "traces"}) == \
        50 * len(answered_ok)
    records = await read_raw(kafka_bootstrap, gateway.config.spans_topic, "traces",
                             until_items=50 * len(answered_ok))
    assert sum(count_items("traces", r.request) for r in records) == 50 * len(answered_ok)
