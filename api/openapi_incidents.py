"""OpenAPI of incident analysis: the body and description of the window and alert forms of
/api/v1/rca (INCIDENT_RCA_BODY, INCIDENT_DOC: api/openapi_rca.py documents the path), and
the path of /api/v1/causal/analyze."""
from __future__ import annotations

from typing import Any

from api.openapi_params import NAME_PATTERN, OBJECT, error_responses, json_content
from api.openapi_schemas import NUM, RANGE, STR, TS, Schema, array, nullable, obj, ref
from api.params import NAME_MAX_CHARS
from api.rca.incident import DEFAULT_METHOD, METHODS
from api.rca.incident_limits import DEFAULT_EVENTS, DEFAULT_K, MAX_EVENTS, MAX_INCIDENT_WINDOW_S, MAX_K

_TIME: Schema = {"oneOf": [{"type": "string", "maxLength": 64}, {"type": "integer", "minimum": 0}],
                 "description": "ISO-8601 date-time or Unix time in milliseconds"}
_WINDOW_FIELDS: dict[str, Schema] = {
    "start": _TIME,
    "end": {**_TIME, "description": "default now; at most " + str(MAX_INCIDENT_WINDOW_S // 3600) + " h after start"},
    "service": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS, "pattern": NAME_PATTERN,
                "description": "the service with the symptom: candidates are it and the services it calls"},
    "alert_fingerprint": {"type": "string", "pattern": "^[0-9a-fA-F]{16}$",
                          "description": "an alert's fingerprint: its latest incident gives the window and service"},
    "method": {"type": "string", "enum": list(METHODS),
               "description": f"ranking method (default {DEFAULT_METHOD}, the best in benchmarks/rca_incidents.py)"},
}
INCIDENT_RCA_BODY: Schema = {
    "type": "object", "additionalProperties": False,
    "properties": {**_WINDOW_FIELDS, "k": {"type": "integer", "minimum": 1, "maximum": MAX_K,
                                           "description": f"candidates to return (default {DEFAULT_K})"}},
    "oneOf": [{"required": ["start"]}, {"required": ["alert_fingerprint"]}],
}
CAUSAL_BODY: Schema = {
    "type": "object", "additionalProperties": False,
    "properties": {**_WINDOW_FIELDS, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS,
                                               "description": f"events in the event chain (default {DEFAULT_EVENTS})"}},
    "oneOf": [{"required": ["start"]}, {"required": ["alert_fingerprint"]}],
}
INCIDENT_DOC = (
    "Ranks the services that may have caused an incident: anomaly windows of the score stage, the call graph "
    "(calls in the window's traces and the callees the score stage learned) and errors and self time in the "
    "window's traces against the period just before it. Each candidate carries its evidence (anomaly windows "
    "with feature and score, calls into it with errors, trace figures, example trace and span IDs); "
    "root_cause gives service, operation, kind (error|latency|throughput) and a computed confidence. "
    f"Give start (and end) or alert_fingerprint, not both; the window is at most {MAX_INCIDENT_WINDOW_S // 3600} h. "
    "404 when the alert or any span or anomaly window of the window is missing.")
CAUSAL_DOC = (
    "The chain from the root cause to the symptoms along the call graph, ordered by when each service first went "
    "anomalous or failed, with the evidence of each hop; a counterfactual computed from the traces (the share of "
    "the symptom's failed requests with an error that started in the cause, and its error rate or p95 latency "
    "without it); and spans, error logs and anomaly windows as one time-ordered list with a one-line "
    "interpretation.")


def _post(summary: str, body: Schema, doc: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "description": doc, "parameters": [],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": {"200": json_content(ref("CausalAnalysis"), "OK"), **error_responses(404)}}}


def incident_paths() -> dict[str, Any]:
    """The causal path of api/routes/rca.py (merged into the document by api/openapi.py)."""
    return {
        "/api/v1/causal/analyze": _post("Causal chain, counterfactual and event chain of an incident",
                                        CAUSAL_BODY, CAUSAL_DOC),
    }


_WINDOW: Schema = obj({"start": TS, "end": TS, "service": nullable(STR), "alert_fingerprint": nullable(STR)})
_ROOT: Schema = nullable(obj({"service": STR, "operation": nullable(STR),
                              "kind": {"type": "string", "enum": ["error", "latency", "throughput"]},
                              "confidence": {"type": "number", "minimum": 0, "maximum": 1}}))
INCIDENT_SCHEMAS: dict[str, Schema] = {
    "IncidentAnalysis": obj({
        "analysis": {"type": "string", "enum": ["incident"]}, "window": _WINDOW,
        "method": {"type": "string", "enum": list(METHODS)},
        "baseline": {**RANGE, "description": "the period the window's trace figures are compared with"},
        "root_cause": _ROOT,
        "candidates": array(obj({
            "service": STR, "score": NUM, "kind": STR,
            "evidence": {**OBJECT, "description": "anomaly_windows, calls_in, traces (figures against the "
                                                  "baseline) and examples (trace and span IDs)"}})),
        "call_graph": {**array(array(STR)), "description": "[caller, callee] pairs seen in the window"},
    }),
    "CausalAnalysis": obj({
        "analysis": {"type": "string", "enum": ["causal"]}, "window": _WINDOW,
        "method": {"type": "string", "enum": list(METHODS)}, "root_cause": _ROOT,
        "chain": {**array(OBJECT), "description": "hops from the root cause to the symptom, in the order each "
                                                  "went anomalous or failed, with their evidence"},
        "counterfactual": nullable(OBJECT),
        "events": {**array(OBJECT), "description": "spans, error logs and anomaly windows in time order"},
        "interpretation": STR,
    }),
}
INCIDENT_ANSWER: Schema = ref("IncidentAnalysis")
