"""OpenAPI paths of the anomaly, alert, trend and insight routes (api/routes/alerts.py)."""
from __future__ import annotations

from typing import Any

from api.openapi_params import (
    OBJECT,
    P_END,
    P_LIMIT,
    P_OFFSET,
    P_SERVICE,
    P_START,
    error_responses,
    get_operation,
    name_param,
    param,
    post_operation,
)
from api.openapi_schemas import Schema

P_OPERATION = name_param("operation", "span name")
P_SCORE = param("min_score", "query", {"type": "number", "minimum": 0},
                "lowest score (surprise, -log10 p) to list")
P_STATUS = param("status", "query", {"type": "string", "enum": ["firing", "resolved", "all"]}, "alert status")
P_PREDICTED = param("predicted", "query", {"type": "string", "enum": ["true", "false"]},
                     "only predicted (or only observed) alerts")
P_METRIC = param("metric", "query",
                  {"type": "string", "enum": ["latency_p95_ms", "latency_p50_ms", "error_rate", "throughput"]},
                  "which window feature")
P_STEP = param("step_s", "query", {"type": "integer", "minimum": 60, "maximum": 86400, "multipleOf": 60},
              "bucket length in seconds: whole minutes, since series are read from per-minute rollups")
P_SINCE = param("since", "query", {"type": "string"}, "replay alerts stored from this time on")
P_STREAM_LIMIT = param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100000},
                        "end the stream after this many events")
ROLLUP_DOC = ("Read from per-minute rollups that the worker refreshes every few seconds: steps are whole "
              "minutes, a window counts every minute it touches, and latency percentiles come from sketches "
              "with 16 buckets per power of two (within 1/32 of the exact value).")
_NUMBER_OR_TEXT: Schema = {"oneOf": [{"type": "string", "maxLength": 256}, {"type": "number"}]}


def alert_paths() -> dict[str, Any]:
    """The paths of the alert routes (merged into the document by api/openapi.py)."""
    window = [P_START, P_END]
    return {
        "/api/v1/anomalies": get_operation("Scored windows per service and operation, newest first",
                                  [P_SERVICE, P_OPERATION, P_SCORE, *window, P_LIMIT, P_OFFSET], OBJECT),
        "/api/v1/alerts": get_operation("Each alert's latest message, most recently changed first",
                               [P_STATUS, P_SERVICE, P_PREDICTED, *window, P_LIMIT, P_OFFSET], OBJECT,
                               doc="Labels identify an alert (and make its fingerprint); the exemplar's "
                                   "correlation_id and its correlation_url are annotations."),
        "/api/v1/alerts/stream": {"get": {
            "summary": "Alerts as server-sent events (event: alert, data: the published JSON)",
            "parameters": [P_SERVICE, P_SINCE, P_STREAM_LIMIT],
            "responses": {"200": {"description": "an event stream", "content": {"text/event-stream": {}}},
                          **error_responses()}}},
        "/api/v1/trends": get_operation("A window feature over time per service",
                                        [P_SERVICE, P_OPERATION, P_METRIC, P_STEP, *window, P_LIMIT], OBJECT,
                                        doc=ROLLUP_DOC),
        "/api/v1/services/health": get_operation("Each service's latest scores and open alerts",
                                                 [*window, P_LIMIT], OBJECT),
        "/api/v1/insights": get_operation("The most anomalous services and operations of a window", [*window, P_LIMIT],
                                 OBJECT),
        "/api/v1/anomalies/detect": post_operation(
            "Score stored spans window by window from an empty baseline",
            {"service": {"type": "string"}, "operation": {"type": "string"}, "start": _NUMBER_OR_TEXT,
             "end": _NUMBER_OR_TEXT, "window_s": {"type": "integer", "minimum": 60, "maximum": 3600, "multipleOf": 60}},
            ["service"], "Which windows are anomalous and which alerts would have fired. " + ROLLUP_DOC),
        "/api/v1/alerts/predict": post_operation(
            "Forecast threshold breaches (Holt-Winters on minute series)",
            {"metric": {"type": "string", "enum": ["latency_p95_ms", "latency_p50_ms", "error_rate", "throughput"]},
             "threshold": {"type": "number"}, "service": {"type": "string"},
             "horizon_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
             "history_minutes": {"type": "integer", "minimum": 10, "maximum": 10080},
             "direction": {"type": "string", "enum": ["above", "below"]},
             "limit": {"type": "integer", "minimum": 1, "maximum": 100}},
            ["metric", "threshold"], "Predicted alerts carry the label predicted=\"true\"; nothing is published."),
    }
