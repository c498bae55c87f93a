"""Spans of an OTLP export request as ``otel_traces`` rows plus the typed attributes enrich needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from schemas.otlp_values import (
    SPAN_KIND_NAMES,
    STATUS_CODE_NAMES,
    attributes_to_map,
    attributes_to_maps,
)

__all__ = ["SPAN_COLUMNS", "SpanRecord", "decode_spans"]

# Insert order of otel_traces (schemas/migrations/0001_otel_traces.sql), Nested flattened.
SPAN_COLUMNS: tuple[str, ...] = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes",
    "Duration", "StatusCode", "StatusMessage",
    "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
    "CorrelationId",
)  # fmt: skip

_KIND_COUNT = len(SPAN_KIND_NAMES)
_STATUS_COUNT = len(STATUS_CODE_NAMES)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One span: its ``otel_traces`` row and the typed attributes correlation lookup reads.

    ``row`` maps every name in SPAN_COLUMNS to its insert value (DateTime64 as int ns,
    Maps as str->str dicts, Nested as parallel lists); ``CorrelationId`` is '' until the
    enrich agent sets it. ``resource_attrs`` and ``attrs`` are the resource's and the
    span's attributes by ``any_value_to_python``. Spans of one resource share the same
    ``resource_attrs`` and ``row["ResourceAttributes"]`` dicts: copy before mutating.
    """

    row: dict[str, Any]
    resource_attrs: dict[str, object]
    attrs: dict[str, object]


def decode_spans(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    """One SpanRecord per span of a parsed request, in request order. Pure; never raises
    for any message protobuf accepted (out-of-range enums read as Unspecified / Unset)."""
    records: list[SpanRecord] = []
    append = records.append
    for resource_spans in request.resource_spans:
        resource_map, resource_typed = attributes_to_maps(resource_spans.resource.attributes)
        service_name = resource_map.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            context = (service_name, resource_map, scope.name, scope.version)
            for span in scope_spans.spans:
                row, attrs = _span_row(span, context)
                append(SpanRecord(row, resource_typed, attrs))
    return records


def _span_row(span: Span, context: tuple[str, dict[str, str], str, str]) -> tuple[dict[str, Any], dict[str, object]]:
    service_name, resource_map, scope_name, scope_version = context
    trace_id = span.trace_id
    span_id = span.span_id
    parent_id = span.parent_span_id
    start = span.start_time_unix_nano
    duration = span.end_time_unix_nano - start
    kind = span.kind
    status = span.status
    code = status.code
    span_map, span_typed = attributes_to_maps(span.attributes)
    # IDs are hex_id inlined, saving a call per ID: lstrip returns its own object when the
    # first byte is non-zero, so the all-zero test is nearly free.
    row = {
        "Timestamp": start,
        "TraceId": trace_id.hex() if trace_id.lstrip(b"\0") else "",
        "SpanId": span_id.hex() if span_id.lstrip(b"\0") else "",
        "ParentSpanId": parent_id.hex() if parent_id.lstrip(b"\0") else "",
        "TraceState": span.trace_state,
        "SpanName": span.name,
        "SpanKind": SPAN_KIND_NAMES[kind] if 0 <= kind < _KIND_COUNT else "Unspecified",
        "ServiceName": service_name,
        "ResourceAttributes": resource_map,
        "ScopeName": scope_name,
        "ScopeVersion": scope_version,
        "SpanAttributes": span_map,
        # An end before the start is a clock or SDK bug; UInt64 cannot hold the negative.
        "Duration": duration if duration > 0 else 0,
        "StatusCode": STATUS_CODE_NAMES[code] if 0 <= code < _STATUS_COUNT else "Unset",
        "StatusMessage": status.message,
        "Events.Timestamp": [],
        "Events.Name": [],
        "Events.Attributes": [],
        "Links.TraceId": [],
        "Links.SpanId": [],
        "Links.TraceState": [],
        "Links.Attributes": [],
        "CorrelationId": "",
    }
    events = span.events
    if events:
        _add_events(row, events)
    links = span.links
    if links:
        _add_links(row, links)
    return row, span_typed


def _add_events(row: dict[str, Any], events: Any) -> None:
    times = row["Events.Timestamp"]
    names = row["Events.Name"]
    attributes = row["Events.Attributes"]
    for event in events:
        times.append(event.time_unix_nano)
        names.append(event.name)
        attributes.append(attributes_to_map(event.attributes))


def _add_links(row: dict[str, Any], links: Any) -> None:
    trace_ids = row["Links.TraceId"]
    span_ids = row["Links.SpanId"]
    states = row["Links.TraceState"]
    attributes = row["Links.Attributes"]
    for link in links:
        trace_id = link.trace_id
        span_id = link.span_id
        trace_ids.append(trace_id.hex() if trace_id.lstrip(b"\0") else "")
        span_ids.append(span_id.hex() if span_id.lstrip(b"\0") else "")
        states.append(link.trace_state)
        attributes.append(attributes_to_map(link.attributes))
