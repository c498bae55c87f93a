"""The response schemas of the OpenAPI document (components.schemas)."""
from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

TIMESTAMP_DOC = ("ISO-8601 UTC with nine decimals (nanoseconds), e.g. 2026-01-31T12:00:00.123456789Z; "
                 "durations are milliseconds as floats unless the name ends in _ns")


def obj(required: dict[str, Schema], **optional: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": {**required, **optional}}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer", "minimum": 0}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TS: Schema = {"type": "string", "description": TIMESTAMP_DOC}
ATTRS: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
NEXT: Schema = nullable({"type": "integer", "minimum": 1, "description": "offset of the next page; null on the last"})
RANGE: Schema = obj({"start": TS, "end": TS})
NODE_KIND: Schema = {"type": "string", "enum": ["service", "database", "peer"],
                     "description": "service: spans of it are stored; database: a client span's db.system; "
                                    "peer: a client span's peer.service or server.address"}
QUANTILES: dict[str, Schema] = {"p50_ms": nullable(NUM), "p95_ms": nullable(NUM), "p99_ms": nullable(NUM)}

SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": STR, "message": STR}, parameter=STR),
    "Span": obj({
        "trace_id": STR, "span_id": STR, "parent_span_id": STR, "name": STR, "kind": STR, "service": STR,
        "timestamp": TS, "duration_ns": INT, "duration_ms": NUM, "status_code": STR, "status_message": STR,
        "error": BOOL, "attributes": ATTRS, "resource_attributes": ATTRS,
        "events": array(obj({"timestamp": TS, "name": STR, "attributes": ATTRS})),
        "correlation_id": STR,
    }),
    "Log": obj({
        "timestamp": TS, "trace_id": STR, "span_id": STR, "service": STR, "severity_text": STR,
        "severity_number": INT, "level": STR, "error": BOOL, "body": STR, "attributes": ATTRS,
        "resource_attributes": ATTRS, "correlation_id": STR,
    }),
    "Exemplar": obj({
        "timestamp": TS, "metric_name": STR, "metric_type": STR, "service": STR, "value": nullable(NUM),
        "trace_id": STR, "span_id": STR, "filtered_attributes": ATTRS, "attributes": ATTRS,
        "correlation_id": STR,
    }),
    "TimelineEntry": obj({
        "timestamp": TS, "type": {"type": "string", "enum": ["span", "log", "metric"]}, "service": STR,
        "description": STR, "duration_ms": nullable(NUM), "level": STR, "error": BOOL,
        "trace_id": STR, "span_id": STR,
    }),
    "CorrelationTrace": obj({
        "trace_id": STR, "root_service": STR, "root_operation": STR, "start": TS, "duration_ms": NUM,
        "span_count": INT, "error_count": INT, "services": array(STR), "spans": array(ref("Span")),
    }),
    "CorrelationContext": obj({
        "correlation_id": STR,
        "summary": obj({
            "spans": INT, "logs": INT, "metrics": INT, "errors": INT, "error_spans": INT, "error_logs": INT,
            "services": INT, "traces": INT, "duration_ms": NUM,
            "truncated": {**BOOL, "description": "a cap on traces, spans, logs or exemplars was reached"},
            "total_spans": {**INT, "description": "= spans"}, "total_logs": {**INT, "description": "= logs"},
            "total_metrics": {**INT, "description": "= metrics"}, "error_count": {**INT, "description": "= errors"},
            "service_count": {**INT, "description": "= services"},
        }),
        "time_range": RANGE,
        "traces": array(ref("CorrelationTrace")),
        "logs": array(ref("Log")),
        "metrics": array(ref("Exemplar")),
        "services": array(obj({"name": STR, "spans": INT, "logs": INT, "metrics": INT, "errors": INT,
                               "first_seen": TS, "last_seen": TS})),
        "errors": array(obj({"type": {"type": "string", "enum": ["span", "log"]}, "timestamp": TS,
                             "service": STR, "trace_id": STR, "span_id": STR, "description": STR,
                             "message": STR})),
        "timeline": array(ref("TimelineEntry")),
    }),
    "Timeline": obj({"correlation_id": STR, "truncated": BOOL, "timeline": array(ref("TimelineEntry"))}),
    "Impact": obj({
        "correlation_id": STR, "truncated": BOOL, "total_errors": INT,
        "services": array(obj({
            "service": STR, "spans": INT, "logs": INT, "error_spans": INT, "error_logs": INT,
            "p95_ms": nullable(NUM), "first_error_at": nullable(TS),
            "operations": array(obj({"operation": STR, "spans": INT, "errors": INT, "p95_ms": nullable(NUM)})),
        })),
        "first_failures": array(obj({"service": STR, "timestamp": TS,
                                     "type": {"type": "string", "enum": ["span", "log"]}, "description": STR})),
    }),
    "Trace": obj({
        "trace_id": STR, "correlation_id": STR, "start": TS, "duration_ms": NUM, "span_count": INT,
        "error_count": INT, "services": array(STR), "truncated": BOOL,
        "spans": array({"allOf": [ref("Span"), obj({"depth": INT, "child_count": INT})]}),
    }),
    "TraceList": obj({
        "traces": array(obj({
            "trace_id": STR, "correlation_id": STR, "root_service": STR, "root_operation": STR, "start": TS,
            "duration_ms": NUM, "span_count": INT, "error_count": INT, "services": array(STR),
        })),
        "time_range": RANGE, "limit": INT, "offset": INT, "next_offset": NEXT,
    }),
    "LogList": obj({"logs": array(ref("Log")), "time_range": nullable(RANGE), "limit": INT, "offset": INT,
                    "next_offset": NEXT}),
    "ServiceList": obj({"time_range": RANGE, "services": array(obj({
        "service": STR, "requests": INT, "errors": INT, "error_rate": NUM, **QUANTILES,
        "spans": INT, "error_spans": INT,
    }))}),
    "ServiceMap": obj({
        "time_range": RANGE, "nodes": array(obj({"service": STR, "kind": NODE_KIND})),
        "edges": array(obj({"caller": STR, "callee": STR, "callee_kind": NODE_KIND, "calls": INT, "errors": INT,
                            "error_rate": NUM, **QUANTILES})),
    }),
    "ExemplarList": obj({"metric_name": STR, "exemplars": array(ref("Exemplar")), "time_range": RANGE,
                         "limit": INT, "offset": INT, "next_offset": NEXT}),
    "Status": obj({"status": STR}, reason=STR),
}
