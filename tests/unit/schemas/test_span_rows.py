"""Tests for schemas.span_rows: OTLP spans as otel_traces rows and SpanRecords."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import (
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
)

from schemas.rows import SPAN_COLUMNS, SpanRecord, decode_spans

TRACE_ID = bytes.fromhex("5B8EFFF798038103D269B633813FC60C")
SPAN_ID = bytes.fromhex("EEE19B7EC3C1B174")
PARENT_ID = bytes.fromhex("EEE19B7EC3C1B173")
LINKED_TRACE_ID = bytes.fromhex("0AF7651916CD43DD8448EB211C80319C")
LINKED_SPAN_ID = bytes.fromhex("00F067AA0BA902B7")
START_NS = 1_700_000_000_123_456_789


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def request(*spans: Span, resource: list[KeyValue] | None = None) -> ExportTraceServiceRequest:
    resource_attrs = [kv("service.name", string_value="checkout")] if resource is None else resource
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=resource_attrs),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="starlette", version="0.48b0"), spans=spans)],
    )])  # fmt: skip


def server_span() -> Span:
    """A child server span in error, with two events and a link."""
    return Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=PARENT_ID,
        trace_state="rojo=00f067aa0ba902b7",
        name="GET /orders/{id}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + 1_500_000,
        attributes=[
            kv("http.route", string_value="/orders/{id}"),
            kv("http.response.status_code", int_value=500),
            kv("retry", bool_value=True),
            kv("ratio", double_value=0.25),
        ],
        events=[
            Span.Event(time_unix_nano=START_NS + 10, name="exception",
                       attributes=[kv("exception.type", string_value="ValueError")]),
            Span.Event(time_unix_nano=START_NS + 20, name="retry", attributes=[kv("attempt", int_value=2)]),
        ],
        links=[Span.Link(trace_id=LINKED_TRACE_ID, span_id=LINKED_SPAN_ID, trace_state="k=v",
                         attributes=[kv("link.kind", string_value="follows")])],
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )  # fmt: skip


def test_server_span_in_error_gives_exact_row() -> None:
    resource = [kv("service.name", string_value="checkout"), kv("host.cpus", int_value=4)]
    [record] = decode_spans(request(server_span(), resource=resource))
    assert record.row == {
        "Timestamp": START_NS,
        "TraceId": "5b8efff798038103d269b633813fc60c",
        "SpanId": "eee19b7ec3c1b174",
        "ParentSpanId": "eee19b7ec3c1b173",
        "TraceState": "rojo=00f067aa0ba902b7",
        "SpanName": "GET /orders/{id}",
        "SpanKind": "Server",
        "ServiceName": "checkout",
        "ResourceAttributes": {"service.name": "checkout", "host.cpus": "4"},
        "ScopeName": "starlette",
        "ScopeVersion": "0.48b0",
        "SpanAttributes": {
            "http.route": "/orders/{id}",
            "http.response.status_code": "500",
            "retry": "true",
            "ratio": "0.25",
        },
        "Duration": 1_500_000,
        "StatusCode": "Error",
        "StatusMessage": "boom",
        "Events.Timestamp": [START_NS + 10, START_NS + 20],
        "Events.Name": ["exception", "retry"],
        "Events.Attributes": [{"exception.type": "ValueError"}, {"attempt": "2"}],
        "Links.TraceId": ["0af7651916cd43dd8448eb211c80319c"],
        "Links.SpanId": ["00f067aa0ba902b7"],
        "Links.TraceState": ["k=v"],
        "Links.Attributes": [{"link.kind": "follows"}],
        "CorrelationId": "",
    }
    assert tuple(record.row) == SPAN_COLUMNS
    assert record.resource_attrs == {"service.name": "checkout", "host.cpus": 4}
    assert record.attrs == {
        "http.route": "/orders/{id}", "http.response.status_code": 500, "retry": True, "ratio": 0.25,
    }  # fmt: skip


ID_CASES = [
    pytest.param({"parent_span_id": b""}, "ParentSpanId", "", id="root-span-no-parent"),
    pytest.param({"parent_span_id": bytes(8)}, "ParentSpanId", "", id="root-span-zero-parent"),
    pytest.param({"trace_id": bytes(16)}, "TraceId", "", id="all-zero-trace-id"),
    pytest.param({"span_id": b""}, "SpanId", "", id="missing-span-id"),
    pytest.param(
        {"span_id": bytes.fromhex("00000000000000AB")}, "SpanId", "00000000000000ab", id="leading-zero-bytes-kept"
    ),
]


@pytest.mark.parametrize(("fields", "column", "expected"), ID_CASES)
def test_ids(fields: dict[str, Any], column: str, expected: str) -> None:
    ids = {"trace_id": TRACE_ID, "span_id": SPAN_ID, "parent_span_id": PARENT_ID}
    span = Span(name="op", **{**ids, **fields})
    [record] = decode_spans(request(span))
    assert record.row[column] == expected


SCALAR_CASES = [
    pytest.param({"start_time_unix_nano": 10, "end_time_unix_nano": 5}, "Duration", 0, id="end-before-start-is-zero"),
    pytest.param({"start_time_unix_nano": 10, "end_time_unix_nano": 0}, "Duration", 0, id="no-end-is-zero"),
    pytest.param({"kind": Span.SPAN_KIND_CLIENT}, "SpanKind", "Client", id="kind-client"),
    pytest.param({"kind": Span.SPAN_KIND_CONSUMER}, "SpanKind", "Consumer", id="kind-consumer"),
    pytest.param({}, "SpanKind", "Unspecified", id="kind-unset"),
    pytest.param({"kind": 9}, "SpanKind", "Unspecified", id="kind-unknown-number"),
    pytest.param({"status": Status(code=Status.STATUS_CODE_OK)}, "StatusCode", "Ok", id="status-ok"),
    pytest.param({}, "StatusCode", "Unset", id="status-unset"),
    pytest.param({"status": Status(code=Status.StatusCode.ValueType(7))}, "StatusCode", "Unset",
                 id="status-unknown-number"),
]


@pytest.mark.parametrize(("fields", "column", "expected"), SCALAR_CASES)
def test_scalar_columns(fields: dict[str, Any], column: str, expected: object) -> None:
    [record] = decode_spans(request(Span(trace_id=TRACE_ID, span_id=SPAN_ID, **fields)))
    assert record.row[column] == expected


def test_span_without_events_or_links_has_empty_fresh_lists() -> None:
    records = decode_spans(request(Span(span_id=SPAN_ID), Span(span_id=PARENT_ID)))
    nested = [name for name in SPAN_COLUMNS if "." in name]
    assert all(records[0].row[name] == [] for name in nested)
    # Fresh per row: appending to one span's events must not touch another's.
    assert records[0].row["Events.Name"] is not records[1].row["Events.Name"]


def test_resources_and_scopes_are_kept_apart_in_order() -> None:
    req = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(
            resource=Resource(attributes=[kv("service.name", string_value="a")]),
            scope_spans=[
                ScopeSpans(scope=InstrumentationScope(name="s1", version="1"),
                           spans=[Span(name="a1"), Span(name="a2")]),
                ScopeSpans(scope=InstrumentationScope(name="s2"), spans=[Span(name="a3")]),
            ],
        ),
        ResourceSpans(resource=Resource(attributes=[kv("service.name", int_value=7)]),
                      scope_spans=[ScopeSpans(spans=[Span(name="b1")])]),
        ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(name="c1")])]),
    ])  # fmt: skip
    records = decode_spans(req)
    summary = [(r.row["SpanName"], r.row["ServiceName"], r.row["ScopeName"], r.row["ScopeVersion"]) for r in records]
    assert summary == [
        ("a1", "a", "s1", "1"),
        ("a2", "a", "s1", "1"),
        ("a3", "a", "s2", ""),
        ("b1", "7", "", ""),  # a non-string service.name is written as its string form
        ("c1", "", "", ""),  # no resource: ServiceName ''
    ]
    assert records[3].resource_attrs == {"service.name": 7}


def test_spans_of_one_resource_share_resource_dicts() -> None:
    first, second = decode_spans(request(Span(name="a"), Span(name="b")))
    assert first.row["ResourceAttributes"] is second.row["ResourceAttributes"]
    assert first.resource_attrs is second.resource_attrs


def test_empty_request_gives_no_records() -> None:
    assert decode_spans(ExportTraceServiceRequest()) == []


def test_span_record_is_frozen() -> None:
    [record] = decode_spans(request(Span(name="a")))
    assert isinstance(record, SpanRecord)
    with pytest.raises(AttributeError):
        record.row = {}  # type: ignore[misc]
