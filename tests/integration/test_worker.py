"""The worker on the real broker and chDB: correlation across requests, dead letters,
insert failures, and the rows that reach ClickHouse."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from core.errors import WarehouseUnavailableError
from core.settings import Settings
from pipeline.topics import ensure_topics, topic_specs
from pipeline.worker import Worker, build_worker
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

pytestmark = pytest.mark.asyncio
TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, ORDER, PAYMENT = "b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8"


class FlakyWarehouse:
    """The real warehouse, with the first ``failures`` inserts failing as if ClickHouse were down."""

    def __init__(self, inner: Warehouse, failures: int) -> None:
        self.inner, self.failures, self.database = inner, failures, inner.database
        self.failed = 0

    def _fail(self) -> None:
        if self.failed < self.failures:
            self.failed += 1
            raise WarehouseUnavailableError("injected: ClickHouse unreachable")

    def insert(self, table: str, columns: Any, *, dedup_token: str | None = None) -> int:
        self._fail()
        return self.inner.insert(table, columns, dedup_token=dedup_token)

    def insert_arrow(self, table: str, rows: Any, *, dedup_token: str | None = None) -> int:
        self._fail()
        return self.inner.insert_arrow(table, rows, dedup_token=dedup_token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest_asyncio.fixture
async def settings(kafka_bootstrap: str, unique: str, tmp_path: Path, warehouse: Warehouse) -> Settings:
    s = settings_for(unique, tmp_path, warehouse.database)
    await ensure_topics(kafka_bootstrap, topic_specs(s.topics))
    return s


@pytest_asyncio.fixture
async def produce(kafka_bootstrap: str) -> AsyncIterator[Any]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def send(topic: str, value: bytes, key: str | None = None) -> None:
        await producer.send_and_wait(topic, value, key=key.encode() if key else None)

    try:
        yield send
    finally:
        await producer.stop()


@pytest_asyncio.fixture
async def running(settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str) -> AsyncIterator[Worker]:
    worker = build_worker(settings, kafka_bootstrap, warehouse, app_id=unique)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


def rows(wh: Warehouse, sql: str, **params: Any) -> list[dict[str, Any]]:
    return wh.query(sql.format(db=wh.database), params)


def lookup(wh: Warehouse, correlation_id: str) -> dict[str, Any]:
    """What a correlation lookup resolves: the traces linked to the ID, their rows, and
    the ID each of those traces shows (its best link)."""
    traces = [r["TraceId"] for r in rows(wh, "SELECT DISTINCT TraceId FROM {db}.ollystack_trace_links "
                                              "WHERE CorrelationId = {{c:String}}", c=correlation_id)]
    spans = rows(wh, "SELECT SpanId, SpanAttributes FROM {db}.otel_traces FINAL WHERE TraceId IN {{t:Array(String)}} "
                     "ORDER BY SpanId", t=traces)
    logs = rows(wh, "SELECT Body FROM {db}.otel_logs FINAL WHERE TraceId IN {{t:Array(String)}} ORDER BY Body",
                t=traces)
    shown = rows(wh, "SELECT DISTINCT argMin(CorrelationId, (Priority, FirstSeen)) AS id "
                     "FROM {db}.ollystack_trace_links WHERE TraceId IN {{t:Array(String)}} GROUP BY TraceId", t=traces)
    return {"traces": traces, "spans": spans, "logs": logs, "shown": sorted(r["id"] for r in shown)}


async def test_an_id_arriving_with_the_last_request_links_the_whole_trace(
        running: Worker, settings: Settings, produce: Any, warehouse: Warehouse) -> None:
    t = settings.topics
    # Children end first, so SDKs export them first; only the root knows the caller's ID.
    await produce(t.spans, traces_request("payment-service", [
        span(TRACE, PAYMENT, ORDER, "charge", T0 + 2_000_000, http__method="POST", http__status_code=402)]), TRACE)
    await produce(t.logs, logs_request("payment-service", [
        log_record(TRACE, PAYMENT, "card declined", T0 + 2_500_000, 17)]), TRACE)
    await produce(t.spans, traces_request("order-service", [
        span(TRACE, ORDER, ROOT, "place order", T0 + 1_000_000)]), TRACE)
    await produce(t.spans, traces_request("api-gateway", [
        span(TRACE, ROOT, "", "POST /orders", T0, 5_000_000,
             **{"http.request.header.x-correlation-id": ["req-7f3a-checkout"]})]), TRACE)
    await wait_until(lambda: len(lookup(warehouse, "req-7f3a-checkout")["spans"]) == 3, what="3 spans linked")
    await wait_until(lambda: len(lookup(warehouse, "req-7f3a-checkout")["logs"]) == 1, what="the log linked")
    found = lookup(warehouse, "req-7f3a-checkout")
    assert found["traces"] == [TRACE]
    assert found["shown"] == ["req-7f3a-checkout"]
    charge = next(s for s in found["spans"] if s["SpanId"] == PAYMENT)
    assert charge["SpanAttributes"]["http.request.method"] == "POST"
    assert charge["SpanAttributes"]["http.response.status_code"] == "402"
    assert "http.method" not in charge["SpanAttributes"]
    index = rows(warehouse, "SELECT uniqExactMerge(Spans) AS spans FROM {db}.ollystack_correlation_index "
                            "WHERE CorrelationId = {{c:String}}", c="req-7f3a-checkout")
    # The root carries the ID; children stored before it (in an earlier batch) keep their
    # generated ID and are linked through the trace. Records of one batch are decided
    # together, so children in the root's batch carry its ID themselves.
    assert 1 <= index[0]["spans"] <= 3


async def test_a_trace_without_any_id_gets_one_generated_id(running: Worker, settings: Settings, produce: Any,
                                                           warehouse: Warehouse) -> None:
    trace = "5b8efff798038103d269b633813fc60c"
    await produce(settings.topics.spans, traces_request("inventory-service", [
        span(trace, "eee19b7ec3c1b174", ROOT)]), trace)
    await produce(settings.topics.logs, logs_request("inventory-service", [
        log_record(trace, "eee19b7ec3c1b174", "miss")]), trace)
    await produce(settings.topics.spans, traces_request("api-gateway", [span(trace, ROOT)]), trace)

    def ids() -> list[str]:
        got = rows(warehouse, "SELECT CorrelationId FROM {db}.otel_traces FINAL WHERE TraceId = {{t:String}} "
                              "UNION ALL SELECT CorrelationId FROM {db}.otel_logs FINAL WHERE TraceId = {{t:String}}",
                   t=trace)
        return [r["CorrelationId"] for r in got] if len(got) == 3 else []

    found = await wait_until(ids, what="2 spans and 1 log stored")
    assert len(set(found)) == 1 and found[0].startswith("olly-")


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [("<script>alert(1)</script>", "markup"), ("' OR 1=1 --", "sql_injection"), ("a" * 10_000, "too_long"),
     ("abc\x00def", "nul_byte"), ("../../etc/passwd", "path_traversal")],
    ids=["markup", "sql", "ten-kb", "nul", "traversal"],
)
async def test_a_hostile_id_is_replaced_and_its_reason_kept(running: Worker, settings: Settings, produce: Any,
                                                            warehouse: Warehouse, hostile: str, reason: str) -> None:
    await produce(settings.topics.spans, traces_request("edge", [span(TRACE, ROOT, correlation_id=hostile)]), TRACE)
    stored = await wait_until(lambda: rows(warehouse, "SELECT CorrelationId, SpanAttributes FROM {db}.otel_traces"),
                              what="the span stored")
    assert stored[0]["CorrelationId"].startswith("olly-")
    attrs = stored[0]["SpanAttributes"]
    assert attrs["ollystack.correlation_id.rejected_reason"] == reason
    assert len(attrs["ollystack.correlation_id.rejected_value"]) <= 256  # the correlation rule's cap


async def test_a_poison_record_goes_to_the_dead_letter_topic_and_the_next_is_stored(
        running: Worker, settings: Settings, produce: Any, warehouse: Warehouse, kafka_bootstrap: str) -> None:
    await produce(settings.topics.spans, b"\xff\xfe this is not protobuf", "poison")
    await produce(settings.topics.spans, traces_request("after", [span(TRACE, ROOT)]), TRACE)
    await wait_until(lambda: rows(warehouse, "SELECT count() AS n FROM {db}.otel_traces")[0]["n"] == 1,
                     what="the record after the poison stored")
    [(value, headers)] = await read_records(kafka_bootstrap, settings.topics.deadletter, 1)
    assert value == b"\xff\xfe this is not protobuf"
    assert headers["ollystack.source.topic"] == settings.topics.spans
    assert headers["ollystack.source.offset"] == "0"
    assert "ExportTraceServiceRequest" in headers["ollystack.reason"]


def _string_field(number: int, text: bytes) -> bytes:
    """A protobuf length-delimited field, for bytes the SDKs would never serialize."""
    return bytes([number << 3 | 2, len(text)]) + text


def invalid_utf8_span() -> bytes:
    """A traces request whose span name is not UTF-8 (protobuf's own parser refuses it)."""
    span_bytes = (_string_field(1, bytes.fromhex("e" * 32)) + _string_field(2, bytes.fromhex("6" * 16))
                  + _string_field(5, b"bad \xff name"))
    scope_spans = _string_field(2, span_bytes)
    resource_spans = _string_field(2, scope_spans)
    return _string_field(1, resource_spans)


def late_span() -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=bytes.fromhex("e" * 32), span_id=bytes.fromhex("7" * 16), name="late",
        start_time_unix_nano=2**64 - 1, end_time_unix_nano=2**64 - 1)
    return request.SerializeToString()


MALFORMED_RAW = {
    "not-protobuf": (b"\xff\xfe this is not protobuf", "undecodable", "ExportTraceServiceRequest"),
    "truncated": (traces_request("cut", [span("e" * 32, "5" * 16)])[:-3], "undecodable", "ExportTraceServiceRequest"),
    "not-utf8": (invalid_utf8_span(), "refused", "not valid UTF-8"),
    "time-past-2262": (late_span(), "refused", "past 2262"),
}


async def test_malformed_raw_records_are_dead_lettered_and_their_neighbours_stored(
        running: Worker, settings: Settings, produce: Any, warehouse: Warehouse, kafka_bootstrap: str) -> None:
    good = [traces_request("good", [span(f"{i:032x}", "1" * 16)]) for i in range(1, len(MALFORMED_RAW) + 2)]
    # All on one partition (one key), each hostile record between two valid ones: they
    # share batches, so the batch must find them and store the rest.
    for value, hostile in zip(good, [*MALFORMED_RAW.values(), None], strict=True):
        await produce(settings.topics.spans, value, "k")
        if hostile is not None:
            await produce(settings.topics.spans, hostile[0], "k")
    await wait_until(lambda: rows(warehouse, "SELECT count() AS n FROM {db}.otel_traces")[0]["n"] == len(good),
                     what="every valid neighbour stored")
    dead = await read_records(kafka_bootstrap, settings.topics.deadletter, len(MALFORMED_RAW))
    by_value = {value: headers for value, headers in dead}
    assert sorted(by_value) == sorted(v for v, _, _ in MALFORMED_RAW.values())  # each exactly once
    for value, kind, reason in MALFORMED_RAW.values():
        assert by_value[value]["ollystack.kind"] == kind and reason in by_value[value]["ollystack.reason"]
        assert by_value[value]["ollystack.stage"] == "ingest"


async def test_the_enriched_topic_carries_the_stored_rows_as_arrow(
        running: Worker, settings: Settings, produce: Any, kafka_bootstrap: str) -> None:
    await produce(settings.topics.spans, traces_request("edge", [span(TRACE, ROOT, correlation_id="req-42"),
                                                                 span(TRACE, ORDER, ROOT)]), TRACE)
    [(value, _)] = await read_records(kafka_bootstrap, settings.topics.enriched_spans, 1)
    table = pa.ipc.open_stream(value).read_all()  # any Arrow reader, no OllyStack code
    assert table.schema.metadata[b"ollystack.table"] == b"otel_traces"
    assert sorted(table.column("SpanId").to_pylist()) == sorted([ROOT, ORDER])
    assert set(table.column("CorrelationId").to_pylist()) == {"req-42"}


async def test_enriched_records_keep_the_order_of_their_batches(
        settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str, produce: Any) -> None:
    """A batch is published while the next is inserted; publishes still go out in the order
    the batches were read, so a partition's enriched records follow its raw records."""
    one_per_batch = settings.model_copy(update={"sink": settings.sink.model_copy(update={"batch_max_records": 1})})
    span_ids = [f"{n:016x}" for n in range(1, 13)]
    for span_id in span_ids:  # one partition: every record under one key
        await produce(settings.topics.spans, traces_request("edge", [span(TRACE, span_id)]), TRACE)
    worker = build_worker(one_per_batch, kafka_bootstrap, warehouse, app_id=unique)
    await worker.start()
    try:
        records = await read_records(kafka_bootstrap, settings.topics.enriched_spans, len(span_ids))
    finally:
        await worker.stop()
    tables = [pa.ipc.open_stream(value).read_all() for value, _ in records]
    assert [sid for table in tables for sid in table.column("SpanId").to_pylist()] == span_ids


async def read_records(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """The first ``count`` records of ``topic``: (value, headers); TimeoutError after 60 s."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[tuple[bytes, dict[str, str]]] = []
    try:
        async with asyncio.timeout(60):
            while len(out) < count:
                record = await consumer.getone()
                out.append((record.value or b"", {k: v.decode() for k, v in record.headers}))
    finally:
        await consumer.stop()
    return out


async def test_insert_failures_are_retried_without_loss_or_duplicates(
        settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str, produce: Any) -> None:
    flaky = FlakyWarehouse(warehouse, failures=4)
    worker = build_worker(settings, kafka_bootstrap, flaky, app_id=unique)  # type: ignore[arg-type]
    await worker.start()
    try:
        for i in range(30):
            trace = f"{i + 1:032x}"
            await produce(settings.topics.spans,
                          traces_request("svc", [span(trace, f"{j + 1:016x}") for j in range(4)]), trace)
        await wait_until(lambda: rows(warehouse, "SELECT count() AS n FROM {db}.otel_traces")[0]["n"] >= 120,
                         what="120 spans stored")
    finally:
        await worker.stop()
    assert flaky.failed == 4
    assert rows(warehouse, "SELECT count() AS n FROM {db}.otel_traces")[0]["n"] == 120
    assert rows(warehouse, "SELECT uniqExact(TraceId, SpanId) AS n FROM {db}.otel_traces")[0]["n"] == 120
    retries = worker.metrics.registry.get_sample_value("ollystack_sink_insert_retries_total", {"signal": "traces"})
    assert retries == 4


async def test_a_restart_on_a_committed_poison_moves_the_partition_within_30s(
        settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str) -> None:
    """The worker died on a poison record after committing the offset before it: the poison
    is read first again. It must be set aside and the partition must move on."""
    late = 2**64 - 1  # protobuf takes it; DateTime64(9) cannot hold it
    poison = ExportTraceServiceRequest()
    poison.resource_spans.add().scope_spans.add().spans.add(
        trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(ORDER), name="poison",
        start_time_unix_nano=late, end_time_unix_nano=late)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        values = [traces_request("before", [span(TRACE, ROOT)]), poison.SerializeToString(),
                  *(traces_request("after", [span(TRACE, f"{i + 1:016x}")]) for i in range(5))]
        sent = [await producer.send_and_wait(settings.topics.spans, v, key=TRACE.encode()) for v in values]
    finally:
        await producer.stop()
    where = TopicPartition(settings.topics.spans, sent[1].partition)
    # The app's own group (where Faust agents read the raw topics before the ingest groups)
    # committed up to the poison: the ingest group, new, starts there.
    committer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=unique, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([where])
        await committer.commit({where: sent[1].offset})
    finally:
        await committer.stop()
    worker = build_worker(settings, kafka_bootstrap, warehouse, app_id=unique)
    await worker.start()
    try:
        await wait_until(lambda: rows(warehouse, "SELECT count() AS n FROM {db}.otel_traces "
                                                 "WHERE ServiceName = 'after'")[0]["n"] == 5,
                         30, "the five records after the poison stored")
        dead = await read_records(kafka_bootstrap, settings.topics.deadletter, 1)
    finally:
        await worker.stop()
    assert dead[0][1]["ollystack.kind"] == "refused" and dead[0][1]["ollystack.stage"] == "ingest"
    assert rows(warehouse, "SELECT count() AS n FROM {db}.otel_traces WHERE SpanName = 'poison'")[0]["n"] == 0
