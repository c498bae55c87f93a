"""Tests for schemas.log_rows: OTLP log records as otel_logs rows and LogRecordRows."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import (
    LogRecord,
    ResourceLogs,
    ScopeLogs,
    SeverityNumber,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from schemas.rows import LOG_COLUMNS, LogRecordRow, decode_logs

TRACE_ID = bytes.fromhex("5B8EFFF798038103D269B633813FC60C")
SPAN_ID = bytes.fromhex("EEE19B7EC3C1B174")
TIME_NS = 1_544_712_660_300_000_000


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def request(*records: LogRecord) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[kv("service.name", string_value="payments"), kv("pid", int_value=42)]),
        schema_url="https://opentelemetry.io/schemas/1.26.0",
        scope_logs=[ScopeLogs(
            scope=InstrumentationScope(
                name="app.logger", version="2.1", attributes=[kv("lib", string_value="structlog")]
            ),
            schema_url="https://opentelemetry.io/schemas/1.24.0",
            log_records=records,
        )],
    )])  # fmt: skip


def decode_one(record: LogRecord) -> LogRecordRow:
    [row] = decode_logs(request(record))
    return row


def test_full_record_gives_exact_row() -> None:
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
    result = decode_one(record)
    assert result.row == {
        "Timestamp": TIME_NS,
        "TraceId": "5b8efff798038103d269b633813fc60c",
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
        "CorrelationId": "",
    }
    assert tuple(result.row) == LOG_COLUMNS
    assert result.resource_attrs == {"service.name": "payments", "pid": 42}
    assert result.attrs == {"order.id": 991, "correlation_id": "req-1"}
    assert result.body == "payment failed"


TIMESTAMPS = [
    pytest.param(TIME_NS, TIME_NS + 5, TIME_NS, id="event-time-wins"),
    pytest.param(0, TIME_NS + 5, TIME_NS + 5, id="observed-time-only"),
    pytest.param(0, 0, 0, id="no-time-at-all"),
]


@pytest.mark.parametrize(("time_ns", "observed_ns", "expected"), TIMESTAMPS)
def test_timestamp(time_ns: int, observed_ns: int, expected: int) -> None:
    row = decode_one(LogRecord(time_unix_nano=time_ns, observed_time_unix_nano=observed_ns)).row
    assert row["Timestamp"] == expected


BODIES = [
    pytest.param(AnyValue(string_value='{"correlation_id": "c-1"}'), '{"correlation_id": "c-1"}',
                 '{"correlation_id": "c-1"}', id="json-text-stays-text"),
    pytest.param(AnyValue(kvlist_value=KeyValueList(values=[
                     kv("url", string_value="/a?b=1&c=<2>"), kv("type", int_value=0)])),
                 '{"type":0,"url":"/a?b=1&c=<2>"}', {"url": "/a?b=1&c=<2>", "type": 0}, id="kvlist"),
    pytest.param(AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="x")])),
                 '[1,"x"]', [1, "x"], id="array"),
    pytest.param(AnyValue(int_value=0), "0", 0, id="int-zero"),
    pytest.param(AnyValue(double_value=2.0), "2", 2.0, id="double"),
    pytest.param(AnyValue(bytes_value=b"\x00\x01"), "AAE=", b"\x00\x01", id="bytes"),
    pytest.param(AnyValue(string_value=""), "", "", id="empty-string"),
    pytest.param(None, "", None, id="no-body"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "text", "typed"), BODIES)
def test_body(body: AnyValue | None, text: str, typed: object) -> None:
    result = decode_one(LogRecord(body=body) if body is not None else LogRecord())
    assert result.row["Body"] == text
    assert result.body == typed


LOW_BYTE_CASES = [
    pytest.param({"flags": 0x1FF}, "TraceFlags", 0xFF, id="flags-low-byte"),
    pytest.param({"flags": 0}, "TraceFlags", 0, id="flags-zero"),
    pytest.param({"severity_number": 24}, "SeverityNumber", 24, id="severity-fatal4"),
    pytest.param({"severity_number": 300}, "SeverityNumber", 44, id="severity-out-of-range-wraps-like-uint8"),
    pytest.param({}, "TraceId", "", id="no-trace-id"),
    pytest.param({"trace_id": bytes(16)}, "TraceId", "", id="all-zero-trace-id"),
    pytest.param({"span_id": bytes(8)}, "SpanId", "", id="all-zero-span-id"),
    pytest.param({}, "EventName", "", id="no-event-name"),
]


@pytest.mark.parametrize(("fields", "column", "expected"), LOW_BYTE_CASES)
def test_scalar_columns(fields: dict[str, Any], column: str, expected: object) -> None:
    assert decode_one(LogRecord(**fields)).row[column] == expected


def test_records_of_one_scope_share_resource_and_scope_dicts() -> None:
    first, second = decode_logs(request(LogRecord(), LogRecord()))
    assert first.row["ResourceAttributes"] is second.row["ResourceAttributes"]
    assert first.row["ScopeAttributes"] is second.row["ScopeAttributes"]
    assert first.resource_attrs is second.resource_attrs
    assert first.row["LogAttributes"] is not second.row["LogAttributes"]


def test_missing_resource_and_scope() -> None:
    req = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord()])])])
    [result] = decode_logs(req)
    assert (result.row["ServiceName"], result.row["ResourceAttributes"], result.row["ScopeName"]) == ("", {}, "")
    assert result.resource_attrs == {}
