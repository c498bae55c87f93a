"""Log records of an OTLP export request as ``otel_logs`` rows plus the typed values enrich needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from schemas.otlp_values import (
    any_value_to_python,
    any_value_to_string,
    attributes_to_map,
    attributes_to_maps,
)

__all__ = ["LOG_COLUMNS", "LogRecordRow", "decode_logs"]

# Insert order of otel_logs (schemas/migrations/0002_otel_logs.sql); the
# __otel_materialized_* columns are computed by ClickHouse and never inserted.
LOG_COLUMNS: tuple[str, ...] = (
    "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber",
    "ServiceName", "Body", "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl",
    "ScopeName", "ScopeVersion", "ScopeAttributes", "LogAttributes", "EventName",
    "CorrelationId",
)  # fmt: skip

# The resource and scope columns every record of a scope shares, in row order: service
# name, resource schema URL and attributes, scope schema URL, name, version, attributes.
_ScopeColumns = tuple[str, str, dict[str, str], str, str, str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class LogRecordRow:
    """One log record: its ``otel_logs`` row and the typed values correlation lookup reads.

    ``row`` maps every name in LOG_COLUMNS to its insert value; ``CorrelationId`` is ''
    until the enrich agent sets it. ``resource_attrs`` and ``attrs`` are the resource's and
    the record's attributes by ``any_value_to_python``; ``body`` is the body the same way
    (None when absent), so a kvlist body is a dict and a JSON text body stays a str.
    Records of one resource (scope) share the resource (scope) dicts: copy before mutating.
    """

    row: dict[str, Any]
    resource_attrs: dict[str, object]
    attrs: dict[str, object]
    body: object


def decode_logs(request: ExportLogsServiceRequest) -> list[LogRecordRow]:
    """One LogRecordRow per log record of a parsed request, in request order.

    Timestamp is ``time_unix_nano``, or ``observed_time_unix_nano`` when that is 0;
    TraceFlags is ``flags & 0xff`` (the W3C trace flags byte); SeverityNumber is kept to
    its low byte like the Collector's uint8 conversion, so a hostile enum cannot fail the
    UInt8 insert. Pure; never raises for any message protobuf accepted.
    """
    records: list[LogRecordRow] = []
    append = records.append
    for resource_logs in request.resource_logs:
        resource_map, resource_typed = attributes_to_maps(resource_logs.resource.attributes)
        service_name = resource_map.get("service.name", "")
        resource_schema_url = resource_logs.schema_url
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            context: _ScopeColumns = (
                service_name, resource_schema_url, resource_map, scope_logs.schema_url,
                scope.name, scope.version, attributes_to_map(scope.attributes),
            )  # fmt: skip
            for record in scope_logs.log_records:
                row, attrs, body = _log_row(record, context)
                append(LogRecordRow(row, resource_typed, attrs, body))
    return records


def _log_row(record: LogRecord, context: _ScopeColumns) -> tuple[dict[str, Any], dict[str, object], object]:
    service_name, resource_schema_url, resource_map, scope_schema_url, scope_name, scope_version, scope_map = (
        context
    )
    trace_id = record.trace_id
    span_id = record.span_id
    timestamp = record.time_unix_nano or record.observed_time_unix_nano
    log_map, log_typed = attributes_to_maps(record.attributes)
    body = record.body
    text = body.string_value
    if text:
        # A plain string body, by far the most common: both forms are the string itself.
        body_text: str = text
        body_typed: object = text
    else:
        body_text = any_value_to_string(body)
        body_typed = any_value_to_python(body)
    row = {
        "Timestamp": timestamp,
        "TraceId": trace_id.hex() if trace_id.lstrip(b"\0") else "",
        "SpanId": span_id.hex() if span_id.lstrip(b"\0") else "",
        "TraceFlags": record.flags & 0xFF,
        "SeverityText": record.severity_text,
        "SeverityNumber": record.severity_number & 0xFF,
        "ServiceName": service_name,
        "Body": body_text,
        "ResourceSchemaUrl": resource_schema_url,
        "ResourceAttributes": resource_map,
        "ScopeSchemaUrl": scope_schema_url,
        "ScopeName": scope_name,
        "ScopeVersion": scope_version,
        "ScopeAttributes": scope_map,
        "LogAttributes": log_map,
        "EventName": record.event_name,
        "CorrelationId": "",
    }
    return row, log_typed, body_typed
