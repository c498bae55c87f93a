"""OTLP/HTTP against the real broker: JSON and protobuf, gzip, limits, bad input, auth."""
from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from core.tenancy import TENANT_ATTRIBUTE
from pipeline.gateway import Gateway
from pipeline.gateway.logic import count_items
from schemas.otlp_json import parse_otlp_json
from tests.support.gateway import read_raw, running_gateway
from tests.support.testdata import OTLP_EXAMPLES

JSON = {"content-type": "application/json"}
PROTO = {"content-type": "application/x-protobuf"}
LIMIT_BYTES = 64 * 1024


def _span_request(n: int, name_bytes: int = 10, trace_byte: int = 1) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(n):
        spans.add(trace_id=bytes([trace_byte]) * 16, span_id=(i + 1).to_bytes(8, "big"), name="s" * name_bytes)
    return req


@pytest_asyncio.fixture
async def gateway(kafka_bootstrap: str, unique: str) -> AsyncIterator[Gateway]:
    async with running_gateway(kafka_bootstrap, unique, max_request_bytes=LIMIT_BYTES) as gw:
        yield gw


@pytest_asyncio.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=30) as c:
        yield c


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "path", "signal", "message_type"), [
    ("trace.json", "/v1/traces", "traces", ExportTraceServiceRequest),
    ("logs.json", "/v1/logs", "logs", ExportLogsServiceRequest),
    ("metrics.json", "/v1/metrics", "metrics", ExportMetricsServiceRequest),
], ids=["traces", "logs", "metrics"])
async def test_json_examples_land_on_the_topics(gateway: Gateway, client: httpx.AsyncClient, name: str,
                                                path: str, signal: str, message_type: type) -> None:
    body = (OTLP_EXAMPLES / name).read_bytes()
    response = await client.post(path, content=gzip.compress(body), headers={**JSON, "content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json" and response.json() == {}
    sent = parse_otlp_json(body, message_type)
    topic = {"traces": gateway.config.spans_topic, "logs": gateway.config.logs_topic,
             "metrics": gateway.config.metrics_topic}[signal]
    records = await read_raw(gateway.config.bootstrap, topic, signal,  # type: ignore[arg-type]
                             until_items=count_items(signal, sent))  # type: ignore[arg-type]
    assert sum(count_items(signal, r.request) for r in records) == count_items(signal, sent)  # type: ignore[arg-type]
    if signal == "traces":
        assert [r.key for r in records] == [b"5b8efff798038103d269b633813fc60c"]
        assert records[0].request == sent
    if signal == "logs":
        assert {r.key for r in records} == {b"5b8efff798038103d269b633813fc60c"}


@pytest.mark.asyncio
async def test_protobuf_response_in_protobuf_and_partial_success(gateway: Gateway, client: httpx.AsyncClient) -> None:
    req = _span_request(3)
    req.resource_spans[0].scope_spans[0].spans[1].trace_id = b"short"
    response = await client.post("/v1/traces", content=req.SerializeToString(), headers=PROTO)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "trace_id" in answer.partial_success.error_message
    records = await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces", until_items=2)
    assert sum(count_items("traces", r.request) for r in records) == 2
    json_answer = await client.post("/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "", "spanId": "0102030405060708", "name": "no trace"}]}]}]})
    assert json_answer.json()["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "headers", "status", "message"), [
    (b"\xff\x00garbage", PROTO, 400, "cannot decode the traces request as OTLP protobuf"),
    (b'{"resourceSpans": [', JSON, 400, "not valid JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"XYZ"}]}]}]}', JSON, 400,
     "resourceSpans[0].scopeSpans[0].spans[0].traceId: not 32 hex characters"),
    (b"a" * (LIMIT_BYTES + 1), PROTO, 413, "larger than"),
    (gzip.compress(b"\x00" * (LIMIT_BYTES * 50)), {**PROTO, "content-encoding": "gzip"}, 413, "decompressed"),
    (b"not gzip", {**PROTO, "content-encoding": "gzip"}, 400, "not valid gzip"),
    (gzip.compress(_span_request(1).SerializeToString()) + b"trailing junk", {**PROTO, "content-encoding": "gzip"},
     400, "bytes after its end"),
    (b"{}", {"content-type": "text/plain"}, 415, "Content-Type 'text/plain' is not supported"),
    (b"{}", {**JSON, "content-encoding": "br"}, 415, "Content-Encoding 'br'"),
], ids=["garbage-protobuf", "bad-json", "bad-trace-id", "oversize", "gzip-bomb", "bad-gzip",
        "gzip-trailing-garbage", "wrong-content-type", "unknown-encoding"])
async def test_bad_input_gets_a_4xx_with_a_message_and_the_next_request_is_served(
        client: httpx.AsyncClient, body: bytes, headers: dict[str, str], status: int, message: str) -> None:
    response = await client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == status
    if headers["content-type"] == "application/x-protobuf":
        assert message in status_pb2.Status.FromString(response.content).message
    else:
        assert message in response.json()["message"]
    good = await client.post("/v1/traces", content=_span_request(1).SerializeToString(), headers=PROTO)
    assert good.status_code == 200


@pytest.mark.asyncio
async def test_empty_requests_succeed_and_write_nothing(gateway: Gateway, client: httpx.AsyncClient) -> None:
    for path in ("/v1/traces", "/v1/logs", "/v1/metrics"):
        assert (await client.post(path, content=b"", headers=PROTO)).status_code == 200
        assert (await client.post(path, content=b"{}", headers=JSON)).json() == {}
    empty_envelopes = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": []}]}]}
    assert (await client.post("/v1/traces", json=empty_envelopes)).status_code == 200
    assert await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces",
                          until_items=0) == []


@pytest.mark.asyncio
async def test_methods_paths_metrics_and_health(gateway: Gateway, client: httpx.AsyncClient) -> None:
    wrong_method = await client.get("/v1/traces")
    assert wrong_method.status_code == 405 and wrong_method.json()["message"]
    assert (await client.post("/v1/profiles", content=b"")).status_code == 404
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await client.post("/v1/traces", content=_span_request(2).SerializeToString(), headers=PROTO)
    await client.post("/v1/traces", content=b"junk", headers=PROTO)
    text = (await client.get("/metrics")).text
    assert 'ollystack_gateway_accepted_items_total{signal="traces"} 2.0' in text
    assert 'ollystack_gateway_requests_total{code="INVALID_ARGUMENT",protocol="http",signal="traces"} 1.0' in text
    assert "ollystack_gateway_produce_seconds_bucket" in text
    assert "ollystack_gateway_inflight_bytes 0.0" in text


@pytest.mark.asyncio
async def test_auth_on_requires_a_token_and_tags_the_tenant(kafka_bootstrap: str, unique: str) -> None:
    async with running_gateway(kafka_bootstrap, unique, auth_tokens={"tok-1": "acme"}) as gateway, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as client:
        body = _span_request(1).SerializeToString()
        missing = await client.post("/v1/traces", content=body, headers=PROTO)
        assert missing.status_code == 401
        assert "missing credentials" in status_pb2.Status.FromString(missing.content).message
        wrong = await client.post("/v1/traces", json={}, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "unknown token"
        for headers in ({"authorization": "Bearer tok-1"}, {"x-api-key": "tok-1"}):
            assert (await client.post("/v1/traces", content=body, headers={**PROTO, **headers})).status_code == 200
        records = await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces", until_items=2)
        tenants = [[kv.value.string_value for kv in rs.resource.attributes if kv.key == TENANT_ATTRIBUTE]
                   for r in records for rs in r.request.resource_spans]
        assert tenants == [["acme"], ["acme"]]


@pytest.mark.asyncio
async def test_auth_off_adds_no_tenant(gateway: Gateway, client: httpx.AsyncClient) -> None:
    body = orjson.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "name": "x"}]}]}]})
    assert (await client.post("/v1/traces", content=body, headers=JSON)).status_code == 200
    records = await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces", until_items=1)
    assert [list(rs.resource.attributes) for r in records for rs in r.request.resource_spans] == [[]]

