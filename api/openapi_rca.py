"""OpenAPI paths and schemas of root-cause analysis (api/routes/rca.py)."""
from __future__ import annotations

from typing import Any

from api.openapi_incidents import INCIDENT_ANSWER, INCIDENT_DOC, INCIDENT_RCA_BODY
from api.openapi_nlq import enhanced_paths
from api.openapi_params import CORRELATION_ID, TRACE_ID, error_responses, json_content
from api.openapi_schemas import BOOL, INT, NUM, RANGE, STR, TS, Schema, array, nullable, obj, ref

# The routes' paths (api/routes/rca.py); the analysis routes' own test checks they agree.
PATHS = ("/api/v1/analyze", "/api/v1/rca", "/api/v1/ai/analyze", "/api/v1/ai/rca")
SHARE: Schema = {"type": "number", "minimum": 0, "maximum": 1}
KIND: Schema = {"type": "string", "enum": ["latency", "error"]}
FINDING: Schema = {"type": "string", "enum": ["critical_path", "error_origin", "slowest_self_time"]}
SPAN_REF: dict[str, Schema] = {
    "span_id": STR, "trace_id": STR, "service": STR, "operation": STR, "start": TS, "end": TS,
    "duration_ms": NUM, "error": BOOL,
}
CONFIDENCE_DOC = ("computed: for kind error, the failing traces whose own error origin has this service and "
                  "operation divided by the traces with a failing span; for kind latency, the span's self time on "
                  "the critical path divided by the critical path's length")
ANALYSIS_DOC = (
    "Request analysis, computed from the stored spans, logs and exemplars of a correlation ID (all its traces) "
    "or of one trace. critical_path follows Jaeger's critical path: from the end of the request, the child that "
    "finishes last before the current point, a child counting only while it blocks its parent (children are "
    "clipped to their parent; overlapping children do not add up; a consumer under its producer and a child "
    "starting after its parent ended are off the path; several traces or parentless spans are walked as "
    "children of one virtual root, time between them is on no span). error_origin is the deepest failing span "
    "none of whose children failed (the first cause), chosen per failing trace; over several traces, the "
    "origin most of them share. root_cause is the error origin when a span failed, else the span with the "
    "most self time on the critical path; confidence: " + CONFIDENCE_DOC + ". The body chooses the analysis: "
    "correlation_id or trace_id (exactly one) for a request; start (and end) or alert_fingerprint for an "
    "incident (analysis \"incident\"): " + INCIDENT_DOC)

RCA_SCHEMAS: dict[str, Schema] = {
    "RequestAnalysis": obj({
        "analysis": {"type": "string", "enum": ["request"]},
        "correlation_id": {**STR, "description": "the looked-up ID; for a trace, its best correlation ID or ''"},
        "trace_ids": array(STR),
        "truncated": {**BOOL, "description": "a cap on traces, spans, logs or exemplars was reached"},
        "time_range": nullable(RANGE),
        "duration_ms": {**NUM, "description": "first span start to last span end"},
        "critical_path_ms": {**NUM, "description": "the sum of the steps' self time on the path"},
        "critical_path": array(obj({
            **SPAN_REF,
            "self_time_ms": {**NUM, "description": "the time this span alone determined the latency"},
            "share": {**SHARE, "description": "self_time_ms / critical_path_ms"},
        })),
        "error_origin": nullable(obj({
            **SPAN_REF, "depth": INT,
            "message": {**STR, "description": "status message, else the exception event's exception.message"},
            "failing_traces": INT, "agreeing_traces": INT,
            "share": {**SHARE, "description": "agreeing_traces / failing_traces"},
            "logs": array(obj({"timestamp": TS, "trace_id": STR, "span_id": STR, "service": STR, "level": STR,
                               "body": STR})),
        })),
        "slowest_self_time": array(obj({**SPAN_REF, "self_time_ms": NUM, "on_critical_path": BOOL})),
        "services": array(obj({"service": STR, "spans": INT, "error_spans": INT, "error_logs": INT,
                               "self_time_ms": NUM, "critical_path_ms": NUM})),
        "root_cause": nullable(obj({"service": STR, "operation": STR, "kind": KIND,
                                    "confidence": {**SHARE, "description": CONFIDENCE_DOC},
                                    "span_id": STR, "trace_id": STR})),
        "findings": array(obj({"kind": KIND, "service": STR, "operation": STR, "span_id": STR, "trace_id": STR,
                               "confidence": SHARE, "summary": STR})),
        "evidence": obj({
            "services": {**array(STR), "description": "every service the findings and items name"},
            "span_ids": {**array(STR), "description": "every span the findings and items name"},
            "trace_ids": array(STR),
            "items": array(obj({"finding": FINDING, "type": {"type": "string", "enum": ["span", "log", "exemplar"]},
                                "timestamp": TS, "trace_id": STR, "span_id": STR, "service": STR,
                                "description": STR})),
        }),
    }),
}


def _body() -> Schema:
    return {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["correlation_id"],
         "properties": {"correlation_id": CORRELATION_ID}},
        {"type": "object", "additionalProperties": False, "required": ["trace_id"],
         "properties": {"trace_id": TRACE_ID}},
        INCIDENT_RCA_BODY,
    ]}


ANSWER: Schema = {"anyOf": [ref("RequestAnalysis"), INCIDENT_ANSWER]}


def _operation() -> Schema:
    return {"post": {
        "summary": "Root-cause analysis of a request: critical path, error origin, root cause, evidence",
        "description": ANALYSIS_DOC, "parameters": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _body()}}},
        "responses": {"200": json_content(ANSWER, "RequestAnalysis, or an incident analysis"),
                      **error_responses(404)},
    }}


def rca_paths() -> dict[str, Any]:
    """The paths of the analysis routes, the explained one included (merged into the
    document by api/openapi.py)."""
    return {**{path: _operation() for path in PATHS}, **enhanced_paths(_body(), ANSWER)}
