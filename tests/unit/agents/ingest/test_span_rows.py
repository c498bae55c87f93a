"""OTLP spans through the ingest path (agents/ingest/spans.py) as otel_traces rows: the
Collector ClickHouse exporter's row for every field, semconv renames, records refused whole
for times past 2262 or text that is not UTF-8, and the correlation ID of each span."""
from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from agents.correlation import REJECTED_REASON_ATTRIBUTE, REJECTED_VALUE_ATTRIBUTE, generated_id
from schemas.otlp_sql import MAX_NANOS
from sinks.warehouse import Warehouse
from tests.support.ingesting import IngestedRows, ingest_rows, numbered, spliced

TRACE_ID = bytes.fromhex("5B8EFFF798038103D269B633813FC60C")
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_ID = bytes.fromhex("EEE19B7EC3C1B174")
PARENT_ID = bytes.fromhex("EEE19B7EC3C1B173")
LINKED_TRACE_ID = bytes.fromhex("0AF7651916CD43DD8448EB211C80319C")
LINKED_SPAN_ID = bytes.fromhex("00F067AA0BA902B7")
START_NS = 1_700_000_000_123_456_789
TABLE = "otel_traces"


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def request(*spans: Span, resource: list[KeyValue] | None = None) -> ExportTraceServiceRequest:
    resource_attrs = [kv("service.name", string_value="checkout")] if resource is None else resource
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=resource_attrs),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="starlette", version="0.48b0"), spans=spans)],
    )])  # fmt: skip


def one_row(out: IngestedRows, record: int = 0) -> dict[str, Any]:
    assert record not in out.refused, out.refused[record]
    [row] = out.rows(TABLE, record)
    return row


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


def test_server_span_in_error_gives_exact_row(ingest_warehouse: Warehouse) -> None:
    resource = [kv("service.name", string_value="checkout"), kv("host.cpus", int_value=4)]
    out = ingest_rows(ingest_warehouse, "traces", [request(server_span(), resource=resource)])
    # Intended difference: CorrelationId is set now (was '' until the enrich agent): the span
    # has no incoming ID, so its trace's ID is generated from the trace and its first start.
    correlation_id = generated_id(TRACE_HEX, START_NS)
    expected = {
        "Timestamp": START_NS,
        "TraceId": TRACE_HEX,
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
        "CorrelationId": correlation_id,
    }
    row = one_row(out)
    assert row == expected
    assert list(row) == list(expected)  # the insert column order (test_output_columns.py)
    assert out.links == [{"Tenant": "", "TraceId": TRACE_HEX, "CorrelationId": correlation_id, "Source": "generated",
                          "Priority": 6, "FirstSeen": START_NS, "LastSeen": START_NS}]
    assert (out.refused, out.counts["spans"], out.counts["correlation_generated"]) == ({}, 1, 1)


ID_CASES = [
    pytest.param({"parent_span_id": b""}, "ParentSpanId", "", id="root-span-no-parent"),
    pytest.param({"parent_span_id": bytes(8)}, "ParentSpanId", "", id="root-span-zero-parent"),
    pytest.param({"trace_id": bytes(16)}, "TraceId", "", id="all-zero-trace-id"),
    pytest.param({"span_id": b""}, "SpanId", "", id="missing-span-id"),
    pytest.param(
        {"span_id": bytes.fromhex("00000000000000AB")}, "SpanId", "00000000000000ab", id="leading-zero-bytes-kept"
    ),
]
SCALAR_CASES = [
    pytest.param({"start_time_unix_nano": 10, "end_time_unix_nano": 5}, "Duration", 0, id="end-before-start-is-zero"),
    pytest.param({"start_time_unix_nano": 10, "end_time_unix_nano": 0}, "Duration", 0, id="no-end-is-zero"),
    pytest.param({"kind": Span.SPAN_KIND_CLIENT}, "SpanKind", "Client", id="kind-client"),
    pytest.param({"kind": Span.SPAN_KIND_CONSUMER}, "SpanKind", "Consumer", id="kind-consumer"),
    pytest.param({}, "SpanKind", "Unspecified", id="kind-unset"),
    pytest.param({"kind": 9}, "SpanKind", "Unspecified", id="kind-unknown-number"),
    pytest.param({"kind": -1}, "SpanKind", "Unspecified", id="kind-negative-number"),
    pytest.param({"status": Status(code=Status.STATUS_CODE_OK)}, "StatusCode", "Ok", id="status-ok"),
    pytest.param({}, "StatusCode", "Unset", id="status-unset"),
    pytest.param({"status": Status(code=Status.StatusCode.ValueType(7))}, "StatusCode", "Unset",
                 id="status-unknown-number"),
    pytest.param({"start_time_unix_nano": MAX_NANOS}, "Timestamp", MAX_NANOS, id="last-nanosecond-of-2262-kept"),
]


@pytest.fixture(scope="module")
def id_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    """Every ID case as one record of one batch (a batch costs the engine the same for one
    record or fifty): record i is case i."""
    ids = {"trace_id": TRACE_ID, "span_id": SPAN_ID, "parent_span_id": PARENT_ID}
    return ingest_rows(ingest_warehouse, "traces",
                       [request(Span(name="op", **{**ids, **case.values[0]})) for case in ID_CASES])


@pytest.fixture(scope="module")
def scalar_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    return ingest_rows(ingest_warehouse, "traces",
                       [request(Span(trace_id=TRACE_ID, span_id=SPAN_ID, **case.values[0])) for case in SCALAR_CASES])


@pytest.mark.parametrize(("record", "fields", "column", "expected"), numbered(ID_CASES))
def test_ids(id_batch: IngestedRows, record: int, fields: dict[str, Any], column: str, expected: str) -> None:
    assert one_row(id_batch, record)[column] == expected


@pytest.mark.parametrize(("record", "fields", "column", "expected"), numbered(SCALAR_CASES))
def test_scalar_columns(scalar_batch: IngestedRows, record: int, fields: dict[str, Any], column: str,
                        expected: object) -> None:
    assert one_row(scalar_batch, record)[column] == expected


def test_span_without_events_or_links_has_empty_lists(ingest_warehouse: Warehouse) -> None:
    # The old decoder's "fresh list per row" rule is gone with Python-built rows: each row of
    # an Arrow table is its own list anyway. What stays: the Nested columns are empty lists.
    out = ingest_rows(ingest_warehouse, "traces", [request(Span(span_id=SPAN_ID), Span(span_id=PARENT_ID))])
    rows = out.rows(TABLE)
    assert len(rows) == 2
    nested = [name for name in rows[0] if "." in name]
    assert len(nested) == 7
    assert all(row[name] == [] for row in rows for name in nested)


def test_resources_and_scopes_are_kept_apart_in_order(ingest_warehouse: Warehouse) -> None:
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
    rows = ingest_rows(ingest_warehouse, "traces", [req]).rows(TABLE)
    summary = [(r["SpanName"], r["ServiceName"], r["ScopeName"], r["ScopeVersion"]) for r in rows]
    assert summary == [
        ("a1", "a", "s1", "1"),
        ("a2", "a", "s1", "1"),
        ("a3", "a", "s2", ""),
        ("b1", "7", "", ""),  # a non-string service.name is written as its string form
        ("c1", "", "", ""),  # no resource: ServiceName ''
    ]
    # The old decoder shared one dict per resource between its spans; rows are values now,
    # and the spans of one resource hold equal maps.
    assert [r["ResourceAttributes"] for r in rows] == [{"service.name": "a"}] * 3 + [{"service.name": "7"}, {}]


def test_records_of_a_batch_keep_their_rows_apart_in_record_order(ingest_warehouse: Warehouse) -> None:
    out = ingest_rows(ingest_warehouse, "traces",
                      [request(Span(name="r0")), request(Span(name="r1a"), Span(name="r1b")), request(Span(name="r2"))])
    assert [(r["SpanName"]) for r in out.rows(TABLE)] == ["r0", "r1a", "r1b", "r2"]
    assert out.records[TABLE] == [0, 1, 1, 2]


def test_empty_request_gives_no_rows(ingest_warehouse: Warehouse) -> None:
    # An empty export request serializes to no bytes at all, and a record without bytes is
    # set aside as undecodable, as the enrich agent did before; a request holding only
    # empty containers is read and gives no rows.
    empty_containers = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans()])])
    out = ingest_rows(ingest_warehouse, "traces", [ExportTraceServiceRequest(), empty_containers])
    assert out.refused == {0: ("undecodable", "empty record value")}
    assert out.rows(TABLE) == []


SEMCONV_CASES = [
    pytest.param([kv("http.method", string_value="GET"), kv("http.status_code", int_value=503)],
                 {"http.request.method": "GET", "http.response.status_code": "503"}, id="renamed"),
    pytest.param([kv("http.status_code", int_value=404), kv("http.response.status_code", int_value=500)],
                 {"http.response.status_code": "500"}, id="stable-key-present-wins"),
    pytest.param([kv("http.target", string_value="/orders?id=7")], {"url.path": "/orders", "url.query": "id=7"},
                 id="target-split-into-path-and-query"),
    pytest.param([kv("db.statement", string_value="SELECT * FROM t WHERE id = 42 AND name = 'bob'")],
                 {"db.query.text": "SELECT * FROM t WHERE id = ? AND name = ?"}, id="statement-literals-masked"),
    pytest.param([kv("net.peer.name", string_value="db1"), kv("net.host.name", string_value="web1")],
                 {"server.address": "db1"}, id="first-rename-of-a-shared-stable-key-wins"),
    pytest.param([kv("http.route", string_value="/a")], {"http.route": "/a"}, id="stable-keys-untouched"),
]


@pytest.fixture(scope="module")
def semconv_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    return ingest_rows(ingest_warehouse, "traces",
                       [request(Span(span_id=SPAN_ID, attributes=case.values[0])) for case in SEMCONV_CASES])


@pytest.mark.parametrize(("record", "attributes", "expected"), numbered(SEMCONV_CASES))
def test_span_attributes_are_semconv_normalised(semconv_batch: IngestedRows, record: int,
                                                attributes: list[KeyValue], expected: dict[str, str]) -> None:
    # Intended difference: the old decoder stored the attributes as sent, and the enrich
    # agent renamed them; the ingest output holds them renamed (agents/semconv.py).
    assert one_row(semconv_batch, record)["SpanAttributes"] == expected


def test_renames_are_counted_per_deprecated_key(semconv_batch: IngestedRows) -> None:
    # http.method + http.status_code, http.status_code, http.target, db.statement, net.peer.name + net.host.name
    assert semconv_batch.counts["semconv_rewritten"] == 7


def test_events_and_links_keep_their_attributes_as_sent(ingest_warehouse: Warehouse) -> None:
    span = Span(span_id=SPAN_ID, events=[Span.Event(name="e", attributes=[kv("http.method", string_value="GET")])],
                links=[Span.Link(span_id=SPAN_ID, attributes=[kv("db.statement", string_value="SELECT 1")])])
    row = one_row(ingest_rows(ingest_warehouse, "traces", [request(span)]))
    assert (row["Events.Attributes"], row["Links.Attributes"]) == ([{"http.method": "GET"}], [{"db.statement":
                                                                                                "SELECT 1"}])


def test_a_repeated_attribute_key_keeps_its_last_value(ingest_warehouse: Warehouse) -> None:
    # Intended difference: the last value wins as before, but it now sits where the last
    # occurrence was (the old dict kept the first place); maps are compared as dicts.
    span = Span(span_id=SPAN_ID, attributes=[kv("a", string_value="1"), kv("b", int_value=2),
                                             kv("a", string_value="3")],
                events=[Span.Event(name="e", attributes=[kv("x", int_value=1), kv("x", int_value=2)])])
    resource = [kv("service.name", string_value="first"), kv("service.name", string_value="last")]
    row = one_row(ingest_rows(ingest_warehouse, "traces", [request(span, resource=resource)]))
    assert row["SpanAttributes"] == {"a": "3", "b": "2"} and set(row["SpanAttributes"]) == {"a", "b"}
    assert row["Events.Attributes"] == [{"x": "2"}]
    assert (row["ResourceAttributes"], row["ServiceName"]) == ({"service.name": "last"}, "last")


PAST_2262 = MAX_NANOS + 1
NOT_UTF8 = ("refused", "a span holds text that is not valid UTF-8")


def bad_text(span: Span, resource: list[KeyValue] | None = None, scope: str = "starlette") -> bytes:
    """A request with ``span``, its BAD! (which must occur once) spliced into bytes that
    are not UTF-8: protobuf cannot serialize such text, so it is built by hand."""
    req = request(span, resource=resource)
    req.resource_spans[0].scope_spans[0].scope.name = scope
    return spliced(req, "BAD!", b"\xff\xfeX!")


NOT_STORABLE = [
    pytest.param(request(Span(name="late", start_time_unix_nano=PAST_2262)),
                 ("refused", "a span starts past 2262 (beyond DateTime64 nanoseconds)"), id="start-past-2262"),
    pytest.param(request(Span(name="late-event", start_time_unix_nano=START_NS,
                              events=[Span.Event(name="ok", time_unix_nano=START_NS),
                                      Span.Event(name="late", time_unix_nano=(1 << 64) - 1)])),
                 ("refused", "a span event is stamped past 2262 (beyond DateTime64 nanoseconds)"),
                 id="event-past-2262"),
    pytest.param(bad_text(Span(name="BAD!")), NOT_UTF8, id="span-name-not-utf8"),
    pytest.param(bad_text(Span(name="a", attributes=[kv("BAD!", string_value="v")])), NOT_UTF8,
                 id="attribute-key-not-utf8"),
    pytest.param(bad_text(Span(name="a", attributes=[kv("k", string_value="BAD!")])), NOT_UTF8,
                 id="attribute-value-not-utf8"),
    pytest.param(bad_text(Span(name="a", status=Status(message="BAD!"))), NOT_UTF8, id="status-message-not-utf8"),
    pytest.param(bad_text(Span(name="a", trace_state="BAD!")), NOT_UTF8, id="trace-state-not-utf8"),
    pytest.param(bad_text(Span(name="a", events=[Span.Event(name="BAD!")])), NOT_UTF8, id="event-name-not-utf8"),
    pytest.param(bad_text(Span(name="a", links=[Span.Link(span_id=SPAN_ID, attributes=[
                     kv("k", string_value="BAD!")])])), NOT_UTF8, id="link-attribute-not-utf8"),
    pytest.param(bad_text(Span(name="a"), resource=[kv("service.name", string_value="BAD!")]), NOT_UTF8,
                 id="resource-attribute-not-utf8"),
    pytest.param(bad_text(Span(name="a"), scope="BAD!"), NOT_UTF8, id="scope-name-not-utf8"),
    # The text of an array or kvlist value is written by Python, whose protobuf parser
    # refuses the value: the record cannot be decoded.
    pytest.param(bad_text(Span(name="a", attributes=[kv("list", array_value=ArrayValue(values=[
                     AnyValue(string_value="BAD!")]))])),
                 ("undecodable", "an array or kvlist value is not valid OTLP"), id="array-value-not-utf8"),
]


@pytest.fixture(scope="module")
def refused_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    """Record 0 and the last two are good; record i + 1 is case i."""
    # An end past 2262 is not stored as a time (only in Duration): no reason to refuse.
    far_end = request(Span(name="far-end", start_time_unix_nano=START_NS, end_time_unix_nano=PAST_2262))
    return ingest_rows(ingest_warehouse, "traces", [request(Span(name="before")),
                                                    *(case.values[0] for case in NOT_STORABLE), far_end,
                                                    request(Span(name="after"))])


@pytest.mark.parametrize(("record", "value", "refusal"), numbered(NOT_STORABLE))
def test_a_record_that_cannot_be_stored_is_refused_whole(refused_batch: IngestedRows, record: int, value: bytes,
                                                         refusal: tuple[str, str]) -> None:
    # Intended differences: a time past 2262 made a row ClickHouse then refused, and text
    # that is not UTF-8 never reached the old decoder (protobuf in Python refuses it); now
    # the record is set aside whole, with the reason.
    kind, reason = refused_batch.refused[record + 1]
    assert (kind, reason[:len(refusal[1])]) == refusal
    assert refused_batch.rows(TABLE, record + 1) == []


def test_records_next_to_refused_ones_are_stored(refused_batch: IngestedRows) -> None:
    assert set(refused_batch.refused) == set(range(1, len(NOT_STORABLE) + 1))
    rows = refused_batch.rows(TABLE)
    assert [(r["SpanName"], r["Duration"]) for r in rows] == [("before", 0), ("far-end", PAST_2262 - START_NS),
                                                              ("after", 0)]
    assert refused_batch.counts["spans"] == 3


def span_with(trace_id: bytes = TRACE_ID, span_id: bytes = SPAN_ID, start_ns: int = START_NS,
              **attrs: Any) -> Span:
    return Span(trace_id=trace_id, span_id=span_id, start_time_unix_nano=start_ns,
                attributes=[kv(key, **value) for key, value in attrs.items()])


CORRELATION_CASES = [
    pytest.param({"correlation_id": {"string_value": "req-1"}}, [], "req-1", id="attribute"),
    pytest.param({"correlation_id": {"int_value": 42}}, [], "42", id="int-attribute-as-text"),
    pytest.param({"correlation_id": {"string_value": "req-1"}}, [kv("correlation_id", string_value="res-1")],
                 "res-1", id="resource-attribute-first"),
    pytest.param({"http.request.header.x-request-id": {"string_value": "hdr-1"}}, [], "hdr-1",
                 id="captured-header"),
    pytest.param({"correlation_id": {"bool_value": True}}, [], None, id="bool-attribute-skipped"),
    pytest.param({"correlation_id": {"string_value": "  "}}, [], None, id="blank-attribute-skipped"),
]


def case_trace(record: int) -> bytes:
    return bytes([record + 1]) * 16  # a trace of each case's own, so the batch decides each alone


@pytest.fixture(scope="module")
def correlation_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    values = [request(span_with(trace_id=case_trace(i), **case.values[0]), resource=case.values[1])
              for i, case in enumerate(CORRELATION_CASES)]
    return ingest_rows(ingest_warehouse, "traces", values)


@pytest.mark.parametrize(("record", "attrs", "resource", "expected"), numbered(CORRELATION_CASES))
def test_a_span_carries_its_traces_correlation_id(correlation_batch: IngestedRows, record: int,
                                                 attrs: dict[str, Any], resource: list[KeyValue],
                                                 expected: str | None) -> None:
    # The typed attribute values the old decoder kept for correlation (SpanRecord.attrs,
    # resource_attrs) are read by the engine now: what they decide is the CorrelationId.
    trace = case_trace(record).hex()
    expected = expected or generated_id(trace, START_NS)
    assert one_row(correlation_batch, record)["CorrelationId"] == expected
    [link] = [link for link in correlation_batch.links if link["TraceId"] == trace]
    assert (link["CorrelationId"], link["Source"] == "generated") == (expected, expected.startswith("olly-"))


def test_a_rejected_incoming_id_is_kept_on_the_span_with_its_reason(ingest_warehouse: Warehouse) -> None:
    out = ingest_rows(ingest_warehouse, "traces", [request(span_with(correlation_id={"string_value": "<b>x</b>"}))])
    row = one_row(out)
    assert row["CorrelationId"] == generated_id(TRACE_HEX, START_NS)
    assert row["SpanAttributes"] == {"correlation_id": "<b>x</b>", REJECTED_REASON_ATTRIBUTE: "markup",
                                     REJECTED_VALUE_ATTRIBUTE: "<b>x</b>"}
    assert out.counts["correlation_rejected"] == 1


def test_spans_without_a_trace_get_ids_generated_from_their_own_identity(ingest_warehouse: Warehouse) -> None:
    other_span = bytes.fromhex("0102030405060708")
    values = [request(span_with(trace_id=b"")), request(span_with(trace_id=bytes(16))),
              request(span_with(trace_id=b"", span_id=other_span)),
              request(span_with(trace_id=b"", start_ns=START_NS + 5_000_000)),
              request(span_with(trace_id=b"", correlation_id={"string_value": "own-1"}))]
    out = ingest_rows(ingest_warehouse, "traces", values)
    ids = [r["CorrelationId"] for r in out.rows(TABLE)]
    own = generated_id(SPAN_ID.hex(), START_NS)
    # Equal identities (span ID and start), equal IDs; another span or start, another ID.
    assert ids == [own, own, generated_id(other_span.hex(), START_NS),
                   generated_id(SPAN_ID.hex(), START_NS + 5_000_000), "own-1"]
    assert len(set(ids)) == 4
    assert out.links == [] and out.counts["correlation_generated"] == 4
