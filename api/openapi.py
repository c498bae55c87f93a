"""The OpenAPI 3.0 document of the query API, matching what the handlers accept and answer."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from api.openapi_schemas import SCHEMAS, TIMESTAMP_DOC, Schema, ref
from api.params import Limits, NAME_MAX_CHARS, TEXT_MAX_CHARS

_LIMITS = Limits()
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+\-]*$"
_TIME_DOC = ("ISO-8601 date-time (UTC unless an offset is given, up to nine decimals) or Unix time in "
             "milliseconds. end defaults to now, start to end minus one hour; at most "
             f"{_LIMITS.max_window_s // 86400} days apart.")
_TEXT_DOC = ("Printable text; values with markup, script URLs, SQL fragments (quotes, ';', '--', "
             "comments, injection phrases) or path traversal are refused with 400.")


def _param(name: str, where: str, schema: Schema, doc: str, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": doc}


def _name(name: str, doc: str, where: str = "query") -> Schema:
    return _param(name, where, {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS,
                                "pattern": _NAME_PATTERN}, doc)


CORRELATION_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[A-Za-z0-9._:\-/=+@]+$",
                  "description": "an ID the pipeline's validator accepts (charset, length, no injection "
                                 "patterns; IDs starting olly- must be olly-<base36>-<8 hex>)"}
TRACE_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{32}$", "description": "W3C trace ID, 32 hex digits"}
P_CID = _param("correlation_id", "path", CORRELATION_ID, "the correlation ID")
P_TRACE = _param("trace_id", "path", TRACE_ID, "the trace ID")
P_START = _param("start", "query", {"type": "string"}, _TIME_DOC)
P_END = _param("end", "query", {"type": "string"}, _TIME_DOC)
P_LIMIT = _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": _LIMITS.max_limit},
                 f"page size, default {_LIMITS.default_limit}")
P_OFFSET = _param("offset", "query", {"type": "integer", "minimum": 0, "maximum": _LIMITS.max_offset},
                  "rows to skip (offset pagination: pass the answer's next_offset)")
P_SERVICE = _name("service", "service.name of the resource")
P_DURATION = {"type": "number", "minimum": 0, "maximum": 86_400_000_000}


def _json(schema: Schema, doc: str) -> Schema:
    return {"description": doc, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    docs = {400: "a parameter is invalid; `parameter` names it", 401: "API key missing or unknown (auth on)",
            404: "nothing stored under the ID", 500: "the query failed (see the API's log)",
            503: "the warehouse is unreachable; retry after Retry-After seconds"}
    return {str(code): _json(ref("Error"), docs[code]) for code in (400, 401, *codes, 500, 503)}


def _get(summary: str, params: list[Schema], ok: Schema, *codes: int, doc: str = "") -> Schema:
    return {"get": {"summary": summary, "description": doc, "parameters": params,
                    "responses": {"200": _json(ok, "OK"), **_errors(*codes)}}}


def _paths() -> dict[str, Any]:
    search = [P_START, P_END, P_LIMIT, P_OFFSET]
    return {
        "/api/v1/correlate/{correlation_id}": _get(
            "Everything stored under a correlation ID", [P_CID], ref("CorrelationContext"), 404,
            doc="Resolved at query time: the traces linked to the ID or holding rows stored under it, "
                "then every span, log and exemplar of those traces (and trace-less logs stored under it). "
                "Every row shows the looked-up ID. Cached in-process for a few seconds. " + TIMESTAMP_DOC),
        "/api/v1/correlate/{correlation_id}/timeline": _get(
            "Spans, logs and exemplars of a correlation ID in time order", [P_CID], ref("Timeline"), 404),
        "/api/v1/correlate/{correlation_id}/impact": _get(
            "Services and operations touched, errors, p95 durations, first failures", [P_CID],
            ref("Impact"), 404),
        "/api/v1/traces/{trace_id}": _get(
            "One trace as a span tree (depth-first, with depth and child_count)", [P_TRACE], ref("Trace"), 404),
        "/api/v1/traces": _get(
            "Traces with a span matching every filter, newest first", [
                P_SERVICE,
                _param("operation", "query", {"type": "string", "minLength": 1, "maxLength": TEXT_MAX_CHARS},
                       "span name. " + _TEXT_DOC),
                _param("status", "query", {"type": "string", "enum": ["ok", "error", "unset"]}, "span status"),
                _param("min_duration_ms", "query", P_DURATION, "span duration at least (ms)"),
                _param("max_duration_ms", "query", P_DURATION, "span duration at most (ms)"),
                *search], ref("TraceList")),
        "/api/v1/logs": _get(
            "Log records, newest first unless order=asc", [
                _param("correlation_id", "query", CORRELATION_ID,
                       "logs of the traces of this ID, and trace-less logs stored under it"),
                _param("trace_id", "query", TRACE_ID, "logs of this trace"),
                P_SERVICE,
                _param("severity", "query", {"type": "string", "enum": [
                    "trace", "debug", "info", "warn", "warning", "error", "fatal"]},
                    "this level or more severe"),
                _param("text", "query", {"type": "string", "minLength": 1, "maxLength": TEXT_MAX_CHARS},
                       "case-insensitive substring of the body. " + _TEXT_DOC),
                _param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "time order"),
                *search], ref("LogList"),
            doc="With correlation_id or trace_id the time range is optional (unbounded by default)."),
        "/api/v1/services": _get(
            "Requests, error rate and latency percentiles per service", [P_START, P_END, P_LIMIT],
            ref("ServiceList"), doc="Requests are root, server and consumer spans."),
        "/api/v1/service-map": _get(
            "Calls between services from parent/child spans", [P_START, P_END, P_LIMIT], ref("ServiceMap")),
        "/api/v1/metrics/{metric_name}/exemplars": _get(
            "Exemplars of a metric, newest first",
            [_name("metric_name", "the metric name", "path"), P_SERVICE, *search], ref("ExemplarList")),
        "/api/v1/exemplars/{trace_id}/trace": {"get": {
            "summary": "Redirect from an exemplar's trace to its correlation lookup (or to the trace)",
            "parameters": [P_TRACE],
            "responses": {"307": {"description": "Location: /api/v1/correlate/{id} or /api/v1/traces/{trace_id}",
                                  "headers": {"Location": {"schema": {"type": "string"}}}},
                          **_errors(404)}}},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": _json(ref("Status"), "alive")}}},
        "/readyz": {"get": {"summary": "Readiness: the warehouse answers and holds the tables", "security": [],
                            "responses": {"200": _json(ref("Status"), "ready"),
                                          "503": _json(ref("Status"), "not ready")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {
            "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The document served at /openapi.json."""
    from api.openapi_alerts import alert_paths  # it builds on this module's helpers

    return {
        "openapi": "3.0.3",
        "info": {"title": "OllyStack query API", "version": "1",
                 "description": "Correlation lookups, traces, logs, services and exemplars. " + TIMESTAMP_DOC
                 + ". With API keys configured every /api/v1 request needs 'Authorization: Bearer <key>' or "
                   "'X-API-Key' and sees only its tenant's rows."},
        "paths": {**_paths(), **alert_paths()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{}, {"bearer": []}, {"apiKey": []}],
    }
