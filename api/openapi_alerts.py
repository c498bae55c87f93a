"""OpenAPI paths of the anomaly, alert, trend and insight routes (api/routes/alerts.py)."""
from __future__ import annotations

from typing import Any

from api.openapi import P_END, P_LIMIT, P_OFFSET, P_SERVICE, P_START, Schema, _errors, _get, _json, _name, _param

_OBJECT: Schema = {"type": "object"}
P_OPERATION = _name("operation", "span name")
P_SCORE = _param("min_score", "query", {"type": "number", "minimum": 0, "maximum": 1}, "lowest score to list")
P_STATUS = _param("status", "query", {"type": "string", "enum": ["firing", "resolved", "all"]}, "alert status")
P_PREDICTED = _param("predicted", "query", {"type": "string", "enum": ["true", "false"]},
                     "only predicted (or only observed) alerts")
P_METRIC = _param("metric", "query",
                  {"type": "string", "enum": ["latency_p95_ms", "latency_p50_ms", "error_rate", "throughput"]},
                  "which window feature")
P_STEP = _param("step_s", "query", {"type": "integer", "minimum": 10, "maximum": 86400}, "bucket length")
P_SINCE = _param("since", "query", {"type": "string"}, "replay alerts stored from this time on")
P_STREAM_LIMIT = _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100000},
                        "end the stream after this many events")
_NUMBER_OR_TEXT: Schema = {"oneOf": [{"type": "string", "maxLength": 256}, {"type": "number"}]}


def _post(summary: str, fields: dict[str, Schema], required: list[str], doc: str) -> Schema:
    body = {"type": "object", "additionalProperties": False, "properties": fields, "required": required}
    return {"post": {"summary": summary, "description": doc, "parameters": [],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": {"200": _json(_OBJECT, "OK"), **_errors()}}}


def alert_paths() -> dict[str, Any]:
    """The paths of the alert routes, merged into the document by api/openapi.py."""
    window = [P_START, P_END]
    return {
        "/api/v1/anomalies": _get("Scored windows per service and operation, newest first",
                                  [P_SERVICE, P_OPERATION, P_SCORE, *window, P_LIMIT, P_OFFSET], _OBJECT),
        "/api/v1/alerts": _get("Each alert's latest message, most recently changed first",
                               [P_STATUS, P_SERVICE, P_PREDICTED, *window, P_LIMIT, P_OFFSET], _OBJECT),
        "/api/v1/alerts/stream": {"get": {
            "summary": "Alerts as server-sent events (event: alert, data: the published JSON)",
            "parameters": [P_SERVICE, P_SINCE, P_STREAM_LIMIT],
            "responses": {"200": {"description": "an event stream", "content": {"text/event-stream": {}}},
                          **_errors()}}},
        "/api/v1/trends": _get("A window feature over time per service", [P_SERVICE, P_OPERATION, P_METRIC, P_STEP,
                                                                           *window, P_LIMIT], _OBJECT),
        "/api/v1/services/health": _get("Each service's latest scores and open alerts", [*window, P_LIMIT], _OBJECT),
        "/api/v1/insights": _get("The most anomalous services and operations of a window", [*window, P_LIMIT],
                                 _OBJECT),
        "/api/v1/anomalies/detect": _post(
            "Score stored spans window by window from an empty baseline",
            {"service": {"type": "string"}, "operation": {"type": "string"}, "start": _NUMBER_OR_TEXT,
             "end": _NUMBER_OR_TEXT, "window_s": {"type": "integer", "minimum": 10, "maximum": 3600}},
            ["service"], "Which windows are anomalous and which alerts would have fired."),
        "/api/v1/alerts/predict": _post(
            "Forecast threshold breaches (Holt-Winters on minute series)",
            {"metric": {"type": "string", "enum": ["latency_p95_ms", "latency_p50_ms", "error_rate", "throughput"]},
             "threshold": {"type": "number"}, "service": {"type": "string"},
             "horizon_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
             "history_minutes": {"type": "integer", "minimum": 10, "maximum": 10080},
             "direction": {"type": "string", "enum": ["above", "below"]},
             "limit": {"type": "integer", "minimum": 1, "maximum": 100}},
            ["metric", "threshold"], "Predicted alerts carry the label predicted=\"true\"; nothing is published."),
    }
