"""Nothing accepted is lost: hostile input through the real gateway, broker, worker and chDB,
counted afterwards. Every item the gateway accepted is stored (in a stated normalised form)
or dead-lettered with its reason, valid neighbours are stored, no answer is a 5xx, and the
worker keeps moving on every partition."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from core.settings import OtlpSettings, ScoreSettings, Settings
from pipeline.gateway.grpc_server import SERVICE_NAMES
from pipeline.gateway.service import Gateway
from schemas.otlp_json import to_otlp_json
from sinks.warehouse import Warehouse
from tests.support.accounting import Accounts, account, first_keys_per_partition
from tests.support.builders import settings_for, wait_until
from tests.support.fuzz import LATE, T0, case
from tests.support.pipeline import running_pipeline

pytestmark = pytest.mark.asyncio
PROTO, JSON = {"content-type": "application/x-protobuf"}, {"content-type": "application/json"}
PATHS = {"traces": "/v1/traces", "logs": "/v1/logs", "metrics": "/v1/metrics"}


@pytest_asyncio.fixture
async def pipeline(kafka_bootstrap: str, unique: str, tmp_path: Path,
                   warehouse: Warehouse) -> AsyncIterator[tuple[Settings, Gateway]]:
    settings = settings_for(unique, tmp_path, warehouse.database).model_copy(
        update={"otlp": OtlpSettings(grpc_port=0, http_port=0), "score": ScoreSettings(enabled=False)})
    async with running_pipeline(settings, kafka_bootstrap, warehouse, unique) as gateway:
        yield settings, gateway


async def all_accounted(settings: Settings, bootstrap: str, warehouse: Warehouse, deadline_s: float) -> Accounts:
    """The accounts once no accepted item is missing; fails at the deadline naming them."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        accounts = await account(bootstrap, settings.topics, warehouse)
        if not accounts.missing:
            return accounts
        if loop.time() > end:
            raise AssertionError(f"accepted items neither stored nor dead-lettered: {accounts.missing[:10]} "
                                 f"({len(accounts.missing)} in all; {accounts.raw_records} raw records)")
        await asyncio.sleep(1.0)


def span_request(*spans: tuple[bytes, bytes, dict[str, object]]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    out = req.resource_spans.add().scope_spans.add().spans
    for trace, span, fields in spans:
        added = out.add(trace_id=trace, span_id=span, name="op", start_time_unix_nano=T0,
                        end_time_unix_nano=T0 + 1000)
        for name, value in fields.items():
            if name == "payload":
                added.attributes.add(key="payload", value=AnyValue(string_value=str(value)))
            else:
                setattr(added, name, value)
    return req


async def test_hostile_spans_between_valid_neighbours_are_stored_normalised_or_refused(
        pipeline: tuple[Settings, Gateway], kafka_bootstrap: str, warehouse: Warehouse) -> None:
    settings, gateway = pipeline
    trace = bytes.fromhex("7e" * 16)
    request = span_request(
        (trace, b"\x01" * 8, {}),
        (trace, b"\x02" * 8, {"start_time_unix_nano": LATE, "end_time_unix_nano": LATE}),  # refused
        (trace, b"\x03" * 8, {"payload": '"' * (4 * 1024 * 1024)}),  # stored whole
        (trace, b"\x04" * 8, {"payload": "\x01" * (7 * 1024 * 1024)}),  # 7 MiB: stored whole
        (trace, b"\x05" * 8, {}),
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=60) as client:
        answer = await client.post("/v1/traces", content=request.SerializeToString(), headers=PROTO)
    assert answer.status_code == 200
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 1 and "past 2262-04-11" in partial.error_message
    accounts = await all_accounted(settings, kafka_bootstrap, warehouse, 90)
    assert (accounts.raw_items, accounts.stored, accounts.dead_records + accounts.dead_items) == (4, 4, 0)
    rows = {r["SpanId"]: r["SpanAttributes"] for r in warehouse.query(
        f"SELECT SpanId, SpanAttributes FROM {warehouse.database}.otel_traces FINAL")}
    assert sorted(rows) == ["01" * 8, "03" * 8, "04" * 8, "05" * 8]
    # ClickHouse gets every byte; only the enriched topic's copy is cut to the message size.
    assert len(rows["03" * 8]["payload"]) == 4 * 1024 * 1024 and len(rows["04" * 8]["payload"]) == 7 * 1024 * 1024
    assert all("ollystack.truncated" not in attrs for attrs in rows.values())


async def test_a_thousand_fuzzed_requests_over_http_and_grpc_lose_nothing(
        pipeline: tuple[Settings, Gateway], kafka_bootstrap: str, warehouse: Warehouse) -> None:
    settings, gateway = pipeline
    rng = random.Random(20261201)
    answers: Counter[str] = Counter()
    mutations: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=60) as client, \
            grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}",
                                      options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        exports = {signal: channel.unary_unary(f"/{name}/Export") for signal, name in SERVICE_NAMES.items()}
        for n in range(1000):
            fuzzed = case(rng)
            mutations[fuzzed.mutation] += 1
            transport = ("http", "json", "grpc")[n % 3]
            if transport == "json" and fuzzed.message is not None:
                response = await client.post(PATHS[fuzzed.signal], content=to_otlp_json(fuzzed.message), headers=JSON)
                answers[f"http {response.status_code}"] += 1
            elif transport == "grpc":
                try:
                    await exports[fuzzed.signal](fuzzed.body)
                    answers["grpc OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    answers[f"grpc {exc.code().name}"] += 1
            else:
                response = await client.post(PATHS[fuzzed.signal], content=fuzzed.body, headers=PROTO)
                answers[f"http {response.status_code}"] += 1
        markers = await send_markers(client, settings)
    print(f"answers: {dict(answers)}; mutations: {dict(mutations)}")
    failures = {k: v for k, v in answers.items()
                if k.split()[1].startswith("5") or k.split()[1] in ("INTERNAL", "UNKNOWN", "UNAVAILABLE")}
    assert failures == {}
    accounts = await all_accounted(settings, kafka_bootstrap, warehouse, 180)
    print(f"accounts: {accounts}")
    assert accounts.raw_items > 1000 and accounts.missing == []
    # The worker is alive on every partition: a marker sent after the fuzz is queryable.
    stored = await wait_until(lambda: markers <= {r["TraceId"] for r in warehouse.query(
        f"SELECT DISTINCT TraceId FROM {warehouse.database}.otel_traces WHERE SpanName = 'marker'")}, 60,
        "a marker on every partition stored")
    assert stored


async def send_markers(client: httpx.AsyncClient, settings: Settings) -> set[str]:
    """One span and one log per raw partition, sent after everything else."""
    candidates = (f"{i:032x}".encode() for i in range(1, 10_000))
    traces = first_keys_per_partition(settings.topics.partitions, candidates)
    assert len(traces) == settings.topics.partitions
    spans = ExportTraceServiceRequest()
    logs = ExportLogsServiceRequest()
    out = spans.resource_spans.add().scope_spans.add().spans
    records = logs.resource_logs.add().scope_logs.add().log_records
    for key in traces.values():
        trace = bytes.fromhex(key.decode())
        out.add(trace_id=trace, span_id=b"\x0e" * 8, name="marker", start_time_unix_nano=T0, end_time_unix_nano=T0)
        records.add(trace_id=trace, span_id=b"\x0e" * 8, time_unix_nano=T0, body=AnyValue(string_value="marker"))
    for path, message in (("/v1/traces", spans), ("/v1/logs", logs)):
        assert (await client.post(path, content=message.SerializeToString(), headers=PROTO)).status_code == 200
    return {key.decode() for key in traces.values()}
