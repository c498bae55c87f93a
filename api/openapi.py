"""The OpenAPI 3.0 document of the query API, matching what the handlers accept and answer."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from api.openapi_alerts import ROLLUP_DOC, alert_paths
from api.openapi_incidents import INCIDENT_SCHEMAS, incident_paths
from api.openapi_metrics import METRIC_SCHEMAS, metric_paths
from api.openapi_nlq import NLQ_SCHEMAS, nlq_paths
from api.openapi_params import (
    CORRELATION_ID,
    P_CID,
    P_DURATION,
    P_END,
    P_LIMIT,
    P_OFFSET,
    P_SERVICE,
    P_START,
    P_TRACE,
    TEXT_DOC,
    TRACE_ID,
    error_responses,
    get_operation,
    json_content,
    name_param,
    param,
)
from api.openapi_rca import RCA_SCHEMAS, rca_paths
from api.openapi_schemas import SCHEMAS, TIMESTAMP_DOC, ref
from api.openapi_search import P_LOG_TAGS, P_SPAN_TAGS, P_TOKENS, SEARCH_SCHEMAS, correlation_paths
from api.params import TEXT_MAX_CHARS


def _paths() -> dict[str, Any]:
    search = [P_START, P_END, P_LIMIT, P_OFFSET]
    return {
        "/api/v1/correlate/{correlation_id}": get_operation(
            "Everything stored under a correlation ID", [P_CID], ref("CorrelationContext"), 404,
            doc="Resolved at query time: the traces linked to the ID or holding rows stored under it, "
                "then every span, log and exemplar of those traces (and trace-less logs stored under it). "
                "Every row shows the looked-up ID. Cached in-process for a few seconds. " + TIMESTAMP_DOC),
        "/api/v1/correlate/{correlation_id}/timeline": get_operation(
            "Spans, logs and exemplars of a correlation ID in time order", [P_CID], ref("Timeline"), 404),
        "/api/v1/correlate/{correlation_id}/impact": get_operation(
            "Services and operations touched, errors, p95 durations, first failures", [P_CID],
            ref("Impact"), 404),
        "/api/v1/traces/{trace_id}": get_operation(
            "One trace as a span tree (depth-first, with depth and child_count)", [P_TRACE], ref("Trace"), 404),
        "/api/v1/traces": get_operation(
            "Traces with a span matching every filter, newest first", [
                P_SERVICE,
                param("operation", "query", {"type": "string", "minLength": 1, "maxLength": TEXT_MAX_CHARS},
                       "span name. " + TEXT_DOC),
                param("status", "query", {"type": "string", "enum": ["ok", "error", "unset"]}, "span status"),
                param("min_duration_ms", "query", P_DURATION, "span duration at least (ms)"),
                param("max_duration_ms", "query", P_DURATION, "span duration at most (ms)"),
                P_SPAN_TAGS,
                *search], ref("TraceList"),
            doc="One span must meet every filter (service, operation, status, durations and tags), as in one "
                "TraceQL spanset; its trace is listed."),
        "/api/v1/logs": get_operation(
            "Log records, newest first unless order=asc", [
                param("correlation_id", "query", CORRELATION_ID,
                       "logs of the traces of this ID, and trace-less logs stored under it"),
                param("trace_id", "query", TRACE_ID, "logs of this trace"),
                P_SERVICE,
                param("severity", "query", {"type": "string", "enum": [
                    "trace", "debug", "info", "warn", "warning", "error", "fatal"]},
                    "this level or more severe"),
                param("text", "query", {"type": "string", "minLength": 1, "maxLength": TEXT_MAX_CHARS},
                       "case-insensitive substring of the body. " + TEXT_DOC),
                P_TOKENS,
                P_LOG_TAGS,
                param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "time order"),
                *search], ref("LogList"),
            doc="With correlation_id or trace_id the time range is optional (unbounded by default)."),
        "/api/v1/services": get_operation(
            "Requests, error rate and latency percentiles per service", [P_START, P_END, P_LIMIT],
            ref("ServiceList"), doc="Requests are root, server and consumer spans. " + ROLLUP_DOC),
        "/api/v1/service-map": get_operation(
            "Calls between services from parent/child spans", [P_START, P_END, P_LIMIT], ref("ServiceMap"),
            doc="An edge is a child span whose parent span is in another service (counted in the parent's "
                "minute), or a client or producer span naming a database (db.system) or a peer "
                "(peer.service, server.address) when no span of another service answered it. " + ROLLUP_DOC),
        "/api/v1/metrics/{metric_name}/exemplars": get_operation(
            "Exemplars of a metric, newest first",
            [name_param("metric_name", "the metric name", "path"), P_SERVICE, *search], ref("ExemplarList")),
        "/api/v1/exemplars/{trace_id}/trace": {"get": {
            "summary": "Redirect from an exemplar's trace to its correlation lookup (or to the trace)",
            "parameters": [P_TRACE],
            "responses": {"307": {"description": "Location: /api/v1/correlate/{id} or /api/v1/traces/{trace_id}",
                                  "headers": {"Location": {"schema": {"type": "string"}}}},
                          **error_responses(404)}}},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": json_content(ref("Status"), "alive")}}},
        "/readyz": {"get": {"summary": "Readiness: the warehouse answers and holds the tables", "security": [],
                            "responses": {"200": json_content(ref("Status"), "ready"),
                                          "503": json_content(ref("Status"), "not ready")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {
            "200": {"description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The document served at /openapi.json."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "OllyStack query API", "version": "1",
                 "description": "Correlation lookups, traces, logs, services and exemplars. " + TIMESTAMP_DOC
                 + ". With API keys configured every /api/v1 request needs 'Authorization: Bearer <key>' or "
                   "'X-API-Key' and sees only its tenant's rows."},
        "paths": {**_paths(), **metric_paths(), **alert_paths(), **correlation_paths(), **rca_paths(),
                  **nlq_paths(), **incident_paths()},
        "components": {
            "schemas": {**SCHEMAS, **METRIC_SCHEMAS, **SEARCH_SCHEMAS, **RCA_SCHEMAS, **NLQ_SCHEMAS,
                        **INCIDENT_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{}, {"bearer": []}, {"apiKey": []}],
    }
