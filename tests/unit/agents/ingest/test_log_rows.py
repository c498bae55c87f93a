"""OTLP log records through the ingest path (agents/ingest/logs.py) as otel_logs rows: the
Collector ClickHouse exporter's row for every field, severities normalised, records refused
whole for times past 2262 or text that is not UTF-8, and the correlation ID of each record,
which a JSON or kvlist body can set."""
from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from agents.correlation import generated_id
from schemas.otlp_sql import MAX_NANOS
from sinks.warehouse import Warehouse
from tests.support.ingesting import IngestedRows, ingest_rows, numbered, spliced

TRACE_ID = bytes.fromhex("5B8EFFF798038103D269B633813FC60C")
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_ID = bytes.fromhex("EEE19B7EC3C1B174")
TIME_NS = 1_544_712_660_300_000_000
TABLE = "otel_logs"


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def request(*records: LogRecord, service: str = "payments") -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[kv("service.name", string_value=service), kv("pid", int_value=42)]),
        schema_url="https://opentelemetry.io/schemas/1.26.0",
        scope_logs=[ScopeLogs(
            scope=InstrumentationScope(
                name="app.logger", version="2.1", attributes=[kv("lib", string_value="structlog")]
            ),
            schema_url="https://opentelemetry.io/schemas/1.24.0",
            log_records=records,
        )],
    )])  # fmt: skip


def one_row(out: IngestedRows, record: int = 0) -> dict[str, Any]:
    assert record not in out.refused, out.refused[record]
    [row] = out.rows(TABLE, record)
    return row


def batch_of(warehouse: Warehouse, cases: list[Any]) -> IngestedRows:
    """Each case's LogRecord (its first value) as record i of one batch."""
    return ingest_rows(warehouse, "logs", [request(case.values[0]) for case in cases])


def test_full_record_gives_exact_row(ingest_warehouse: Warehouse) -> None:
    record = LogRecord(
        time_unix_nano=TIME_NS,
        observed_time_unix_nano=TIME_NS + 5,
        severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
        severity_text="ERROR",
        body=AnyValue(string_value="payment failed"),
        attributes=[kv("order.id", int_value=991), kv("correlation_id", string_value="req-1")],
        flags=0x101,  # the upper bits are reserved; only the low byte is trace flags
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        event_name="payment.failed",
    )
    out = ingest_rows(ingest_warehouse, "logs", [request(record)])
    expected = {
        "Timestamp": TIME_NS,
        "TraceId": TRACE_HEX,
        "SpanId": "eee19b7ec3c1b174",
        "TraceFlags": 1,
        "SeverityText": "ERROR",
        "SeverityNumber": 17,
        "ServiceName": "payments",
        "Body": "payment failed",
        "ResourceSchemaUrl": "https://opentelemetry.io/schemas/1.26.0",
        "ResourceAttributes": {"service.name": "payments", "pid": "42"},
        "ScopeSchemaUrl": "https://opentelemetry.io/schemas/1.24.0",
        "ScopeName": "app.logger",
        "ScopeVersion": "2.1",
        "ScopeAttributes": {"lib": "structlog"},
        "LogAttributes": {"order.id": "991", "correlation_id": "req-1"},
        "EventName": "payment.failed",
        # Intended difference: set now (was '' until the enrich agent); the record's own
        # correlation_id attribute (typed, as LogRecordRow.attrs held it) becomes its trace's ID.
        "CorrelationId": "req-1",
    }
    row = one_row(out)
    assert row == expected
    assert list(row) == list(expected)  # the insert column order (test_output_columns.py)
    assert out.links == [{"Tenant": "", "TraceId": TRACE_HEX, "CorrelationId": "req-1", "Source": "attribute",
                          "Priority": 1, "FirstSeen": TIME_NS, "LastSeen": TIME_NS}]
    assert (out.refused, out.counts["logs"], out.counts["correlation_found"]) == ({}, 1, 1)


TIMESTAMPS = [
    pytest.param(TIME_NS, TIME_NS + 5, TIME_NS, id="event-time-wins"),
    pytest.param(0, TIME_NS + 5, TIME_NS + 5, id="observed-time-only"),
    pytest.param(0, 0, 0, id="no-time-at-all"),
    pytest.param(TIME_NS, MAX_NANOS + 1, TIME_NS, id="observed-past-2262-unused"),
]


@pytest.fixture(scope="module")
def time_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    records = [LogRecord(time_unix_nano=c.values[0], observed_time_unix_nano=c.values[1]) for c in TIMESTAMPS]
    return ingest_rows(ingest_warehouse, "logs", [request(r) for r in records])


@pytest.mark.parametrize(("record", "time_ns", "observed_ns", "expected"), numbered(TIMESTAMPS))
def test_timestamp(time_batch: IngestedRows, record: int, time_ns: int, observed_ns: int, expected: int) -> None:
    assert one_row(time_batch, record)["Timestamp"] == expected


BODIES = [
    pytest.param(AnyValue(string_value='{"correlation_id": "c-1"}'), '{"correlation_id": "c-1"}',
                 id="json-text-stays-text"),
    pytest.param(AnyValue(kvlist_value=KeyValueList(values=[
                     kv("url", string_value="/a?b=1&c=<2>"), kv("type", int_value=0)])),
                 '{"type":0,"url":"/a?b=1&c=<2>"}', id="kvlist"),
    pytest.param(AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="x")])),
                 '[1,"x"]', id="array"),
    pytest.param(AnyValue(int_value=0), "0", id="int-zero"),
    pytest.param(AnyValue(double_value=2.0), "2", id="double"),
    pytest.param(AnyValue(bytes_value=b"\x00\x01"), "AAE=", id="bytes"),
    pytest.param(AnyValue(string_value=""), "", id="empty-string"),
    pytest.param(None, "", id="no-body"),
]  # fmt: skip


@pytest.fixture(scope="module")
def body_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    records = [LogRecord(body=c.values[0]) if c.values[0] is not None else LogRecord() for c in BODIES]
    return ingest_rows(ingest_warehouse, "logs", [request(r) for r in records])


@pytest.mark.parametrize(("record", "body", "text"), numbered(BODIES))
def test_body(body_batch: IngestedRows, record: int, body: AnyValue | None, text: str) -> None:
    # The typed body the old decoder kept (LogRecordRow.body) is what correlation reads: see
    # the body correlation tests below.
    assert one_row(body_batch, record)["Body"] == text


LOW_BYTE_CASES = [
    pytest.param(LogRecord(flags=0x1FF), "TraceFlags", 0xFF, id="flags-low-byte"),
    pytest.param(LogRecord(flags=0), "TraceFlags", 0, id="flags-zero"),
    pytest.param(LogRecord(severity_number=24), "SeverityNumber", 24, id="severity-fatal4"),
    # Intended difference: the low byte (300 & 0xFF = 44) is kept as before, then normalised:
    # 44 is no severity and there is no text, so (0, '').
    pytest.param(LogRecord(severity_number=300), "SeverityNumber", 0, id="severity-out-of-range-wraps-like-uint8"),
    pytest.param(LogRecord(severity_number=256 + 17), "SeverityNumber", 17, id="severity-wraps-to-its-low-byte"),
    pytest.param(LogRecord(), "TraceId", "", id="no-trace-id"),
    pytest.param(LogRecord(trace_id=bytes(16)), "TraceId", "", id="all-zero-trace-id"),
    pytest.param(LogRecord(span_id=bytes(8)), "SpanId", "", id="all-zero-span-id"),
    pytest.param(LogRecord(), "EventName", "", id="no-event-name"),
]


@pytest.fixture(scope="module")
def scalar_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    return batch_of(ingest_warehouse, LOW_BYTE_CASES)


@pytest.mark.parametrize(("record", "log", "column", "expected"), numbered(LOW_BYTE_CASES))
def test_scalar_columns(scalar_batch: IngestedRows, record: int, log: LogRecord, column: str,
                        expected: object) -> None:
    assert one_row(scalar_batch, record)[column] == expected


SEVERITIES = [
    pytest.param(LogRecord(severity_number=17, severity_text="ERROR"), (17, "ERROR"), id="consistent-pair-kept"),
    pytest.param(LogRecord(severity_number=10, severity_text="Information"), (10, "INFO"),
                 id="number-wins-text-made-canonical"),
    pytest.param(LogRecord(severity_number=24), (24, "FATAL"), id="number-only-gets-its-text"),
    pytest.param(LogRecord(severity_text="warning"), (13, "WARN"), id="text-alias-gets-its-number"),
    pytest.param(LogRecord(severity_text="CRITICAL"), (21, "FATAL"), id="critical-is-fatal"),
    pytest.param(LogRecord(severity_text="INFO3"), (11, "INFO"), id="text-step"),
    pytest.param(LogRecord(severity_text="verbose-ish"), (0, "verbose-ish"), id="unknown-text-kept"),
    pytest.param(LogRecord(severity_number=300, severity_text="error"), (17, "ERROR"),
                 id="no-severity-number-after-the-low-byte-then-text"),
    pytest.param(LogRecord(), (0, ""), id="none-stays-none"),
]


@pytest.fixture(scope="module")
def severity_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    # Every pair twice: a pair is normalised once per batch, and every record shows it.
    return ingest_rows(ingest_warehouse, "logs", [request(case.values[0], case.values[0]) for case in SEVERITIES])


@pytest.mark.parametrize(("record", "log", "expected"), numbered(SEVERITIES))
def test_severity_is_normalised(severity_batch: IngestedRows, record: int, log: LogRecord,
                                expected: tuple[int, str]) -> None:
    # Intended difference: the old decoder stored number and text as sent; now the pair is
    # made consistent (agents/semconv.py normalize_severity on the number's low byte).
    rows = severity_batch.rows(TABLE, record)
    assert [(r["SeverityNumber"], r["SeverityText"]) for r in rows] == [expected, expected]


def test_records_of_one_scope_hold_equal_resource_and_scope_maps(ingest_warehouse: Warehouse) -> None:
    # The old decoder shared one dict per resource and scope between its rows (its hot path);
    # rows are values now: what stays is that they are equal, and each record has its own
    # attributes.
    out = ingest_rows(ingest_warehouse, "logs", [request(LogRecord(attributes=[kv("n", int_value=1)]),
                                                         LogRecord(attributes=[kv("n", int_value=2)]))])
    first, second = out.rows(TABLE)
    assert first["ResourceAttributes"] == second["ResourceAttributes"] == {"service.name": "payments", "pid": "42"}
    assert first["ScopeAttributes"] == second["ScopeAttributes"] == {"lib": "structlog"}
    assert (first["LogAttributes"], second["LogAttributes"]) == ({"n": "1"}, {"n": "2"})


def test_missing_resource_and_scope(ingest_warehouse: Warehouse) -> None:
    req = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord()])])])
    row = one_row(ingest_rows(ingest_warehouse, "logs", [req]))
    assert (row["ServiceName"], row["ResourceAttributes"], row["ScopeName"], row["ScopeAttributes"]) == ("", {}, "",
                                                                                                      {})


def test_a_repeated_attribute_key_keeps_its_last_value(ingest_warehouse: Warehouse) -> None:
    # Intended difference: the last value wins as before, at the place of its last occurrence.
    log = LogRecord(attributes=[kv("a", string_value="1"), kv("b", bool_value=False), kv("a", int_value=3)])
    row = one_row(ingest_rows(ingest_warehouse, "logs", [request(log)]))
    assert row["LogAttributes"] == {"a": "3", "b": "false"} and set(row["LogAttributes"]) == {"a", "b"}


PAST_2262 = MAX_NANOS + 1
NOT_STORABLE = [
    pytest.param(request(LogRecord(time_unix_nano=PAST_2262)),
                 "a log record is stamped past 2262 (beyond DateTime64 nanoseconds)", id="time-past-2262"),
    pytest.param(request(LogRecord(observed_time_unix_nano=(1 << 64) - 1)),
                 "a log record is stamped past 2262 (beyond DateTime64 nanoseconds)", id="observed-only-past-2262"),
    pytest.param(spliced(request(LogRecord(body=AnyValue(string_value="BAD!"))), "BAD!", b"\xff\xfeX!"),
                 "a log record holds text that is not valid UTF-8", id="body-not-utf8"),
    pytest.param(spliced(request(LogRecord(severity_text="BAD!")), "BAD!", b"\xc3\x28X!"),
                 "a log record holds text that is not valid UTF-8", id="severity-text-not-utf8"),
    pytest.param(spliced(request(LogRecord(attributes=[kv("k", string_value="BAD!")])), "BAD!", b"X\x80X!"),
                 "a log record holds text that is not valid UTF-8", id="attribute-not-utf8"),
    pytest.param(spliced(request(LogRecord(event_name="BAD!")), "BAD!", b"\xf8XX!"),
                 "a log record holds text that is not valid UTF-8", id="event-name-not-utf8"),
    pytest.param(spliced(request(LogRecord(), service="BAD!"), "BAD!", b"\xed\xa0\x80!"),
                 "a log record holds text that is not valid UTF-8", id="resource-attribute-surrogate"),
]


@pytest.fixture(scope="module")
def refused_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    """Record 0 and the last are good; record i + 1 is case i."""
    good = request(LogRecord(body=AnyValue(string_value="good")))
    return ingest_rows(ingest_warehouse, "logs", [good, *(case.values[0] for case in NOT_STORABLE), good])


@pytest.mark.parametrize(("record", "value", "reason"), numbered(NOT_STORABLE))
def test_a_record_that_cannot_be_stored_is_refused_whole(refused_batch: IngestedRows, record: int, value: Any,
                                                         reason: str) -> None:
    # Intended differences: a time past 2262 made a row ClickHouse refused, and protobuf
    # cannot serialize text that is not UTF-8 (built by hand here); now the record is set
    # aside whole with the reason.
    assert refused_batch.refused[record + 1] == ("refused", reason)
    assert refused_batch.rows(TABLE, record + 1) == []


def test_records_next_to_refused_ones_are_stored(refused_batch: IngestedRows) -> None:
    assert set(refused_batch.refused) == set(range(1, len(NOT_STORABLE) + 1))
    assert [r["Body"] for r in refused_batch.rows(TABLE)] == ["good", "good"]
    assert refused_batch.counts["logs"] == 2


def case_trace(record: int) -> bytes:
    return bytes([record + 1]) * 16  # a trace of each case's own, so the batch decides each alone


BODY_CORRELATION = [
    pytest.param(AnyValue(string_value='{"request_id": "r-1", "msg": "paid"}'), "r-1", id="json-body-request-id"),
    pytest.param(AnyValue(string_value='  {"correlationId": "c-1"}\n'), "c-1", id="json-body-padded"),
    pytest.param(AnyValue(string_value='{"correlation_id": 77}'), "77", id="json-int-as-text"),
    pytest.param(AnyValue(string_value='{"correlation\\u005fid": "c-3"}'), "c-3", id="json-escaped-key"),
    pytest.param(AnyValue(string_value='{"msg": "x", "correlation_id": "c-4", "request_id": "r-4"}'), "c-4",
                 id="body-keys-in-config-order"),
    pytest.param(AnyValue(kvlist_value=KeyValueList(values=[kv("correlation_id", string_value="k-1"),
                                                            kv("n", int_value=1)])), "k-1", id="kvlist-body"),
    pytest.param(AnyValue(kvlist_value=KeyValueList(values=[kv("requestId", int_value=5)])), "5",
                 id="kvlist-body-int"),
    pytest.param(AnyValue(string_value='["correlation_id", "x"]'), None, id="json-array-body"),
    pytest.param(AnyValue(string_value='"correlation_id"'), None, id="json-string-body"),
    pytest.param(AnyValue(string_value='{"correlation_id": "c-5"'), None, id="json-not-closed"),
    pytest.param(AnyValue(string_value='{"outer": {"correlation_id": "c-6"}}'), None, id="nested-key-not-read"),
    pytest.param(AnyValue(string_value='{"correlation_id": true}'), None, id="json-bool-skipped"),
    pytest.param(AnyValue(string_value="correlation_id=c-7"), None, id="plain-text-body"),
    pytest.param(AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="correlation_id")])), None,
                 id="array-body"),
    pytest.param(AnyValue(kvlist_value=KeyValueList(values=[kv("other", string_value="correlation_id")])), None,
                 id="kvlist-without-the-key"),
]


@pytest.fixture(scope="module")
def body_correlation_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    logs = [LogRecord(time_unix_nano=TIME_NS, trace_id=case_trace(i), body=case.values[0])
            for i, case in enumerate(BODY_CORRELATION)]
    return ingest_rows(ingest_warehouse, "logs", [request(log) for log in logs])


@pytest.mark.parametrize(("record", "body", "expected"), numbered(BODY_CORRELATION))
def test_a_json_or_kvlist_body_sets_the_correlation_id(body_correlation_batch: IngestedRows, record: int,
                                                       body: AnyValue, expected: str | None) -> None:
    trace = case_trace(record).hex()
    [link] = [link for link in body_correlation_batch.links if link["TraceId"] == trace]
    if expected is None:
        expected = generated_id(trace, TIME_NS)
        assert link["Source"] == "generated"
    else:
        assert link["Source"] == "body"
    assert one_row(body_correlation_batch, record)["CorrelationId"] == link["CorrelationId"] == expected


def test_a_body_key_loses_to_an_attribute(ingest_warehouse: Warehouse) -> None:
    log = LogRecord(trace_id=TRACE_ID, body=AnyValue(string_value='{"correlation_id": "from-body"}'),
                    attributes=[kv("correlation_id", string_value="from-attribute")])
    out = ingest_rows(ingest_warehouse, "logs", [request(log)])
    assert one_row(out)["CorrelationId"] == "from-attribute"
    assert [link["Source"] for link in out.links] == ["attribute"]


def test_records_without_a_trace_get_ids_from_their_own_identity(ingest_warehouse: Warehouse) -> None:
    def log(body: str, time_ns: int = TIME_NS) -> LogRecord:
        return LogRecord(time_unix_nano=time_ns, body=AnyValue(string_value=body))

    values = [request(log("same"), log("same")), request(log("same")), request(log("other")),
              request(log("same", TIME_NS + 1)), request(log("same"), service="billing"),
              request(log('{"request_id": "own-1"}')), request(LogRecord(trace_id=bytes(16), time_unix_nano=TIME_NS,
                                                                         body=AnyValue(string_value="same")))]
    out = ingest_rows(ingest_warehouse, "logs", values)
    ids = [r["CorrelationId"] for r in out.rows(TABLE)]
    # The identity is the stored Timestamp, service and body text: equal identities (within
    # a record and across records), equal IDs; any part different, another ID.
    same = generated_id(f"{TIME_NS}:payments:same", TIME_NS)
    assert ids == [same, same, same, generated_id(f"{TIME_NS}:payments:other", TIME_NS),
                   generated_id(f"{TIME_NS + 1}:payments:same", TIME_NS + 1),
                   generated_id(f"{TIME_NS}:billing:same", TIME_NS), "own-1", same]
    assert len(set(ids)) == 5
    assert out.links == [] and out.counts["correlation_generated"] == 7


def test_a_generated_id_is_the_same_in_another_batch(ingest_warehouse: Warehouse) -> None:
    log = LogRecord(time_unix_nano=TIME_NS, body=AnyValue(string_value="again"))
    first, second = (one_row(ingest_rows(ingest_warehouse, "logs", [request(log)])) for _ in range(2))
    assert first["CorrelationId"] == second["CorrelationId"] == generated_id(f"{TIME_NS}:payments:again", TIME_NS)
