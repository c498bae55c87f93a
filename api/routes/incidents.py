"""Incident analysis (the window and alert forms of /api/v1/rca) and /api/v1/causal/analyze."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agents.score.config import ScoreConfig
from api import params as p
from api.presentation.rows import iso_ns
from api.queries.causal import counterfactual_row, error_log_rows, event_span_rows
from api.queries.incident import alert_row
from api.rca.causal import (
    base_self_ns,
    chain_services,
    counterfactual,
    event_chain,
    hop_json,
    interpretation,
    symptoms,
)
from api.rca.incident import DEFAULT_METHOD, METHODS, Candidate, confidence, rank, trace_signal
from api.rca.incident_evidence import IncidentData
from api.rca.incident_limits import DEFAULT_EVENTS, DEFAULT_K, MAX_EVENTS, MAX_INCIDENT_WINDOW_S, MAX_K
from api.rca.incident_load import baseline_range, load_incident
from api.responses import JsonResponse, NotFoundError
from api.runtime import runtime

BODY_MAX_BYTES = 16 * 1024
EVIDENCE_WINDOWS = 3
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
RCA_FIELDS = frozenset({"start", "end", "service", "alert_fingerprint", "k", "method"})
CAUSAL_FIELDS = frozenset({"start", "end", "service", "alert_fingerprint", "limit", "method"})
_METHODS: dict[str, str] = {m: m for m in METHODS}


@dataclass(frozen=True)
class IncidentQuery:
    time: p.TimeRange
    service: str | None
    fingerprint: str | None


def _fields(body: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, str]:
    """Body fields as text (numbers as written); unknown fields and other types are refused."""
    out: dict[str, str] = {}
    for name, value in body.items():
        if name not in allowed:
            shown = str(name)[:64].encode("unicode_escape").decode()
            raise p.ParamError(shown, f"unknown field; allowed: {', '.join(sorted(allowed))}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise p.ParamError(name, "must be a string or a number")
        text = value if isinstance(value, str) else repr(value)
        if len(text) > p.MAX_VALUE_CHARS:
            raise p.ParamError(name, f"longer than {p.MAX_VALUE_CHARS} characters")
        out[name] = text
    return out


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body (400 when it is not one)."""
    raw = await request.body()
    if len(raw) > BODY_MAX_BYTES:
        raise p.ParamError("body", f"larger than {BODY_MAX_BYTES} bytes")
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise p.ParamError("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise p.ParamError("body", "must be a JSON object")
    return data


def _config(request: Request) -> ScoreConfig:
    found = getattr(request.app.state, "score_config", None)
    return found if isinstance(found, ScoreConfig) else ScoreConfig()


async def _incident_query(request: Request, q: Mapping[str, str]) -> IncidentQuery:
    """The window and service: given, or those of the alert's latest incident."""
    rt = runtime(request)
    limits = replace(rt.limits, max_window_s=min(rt.limits.max_window_s, MAX_INCIDENT_WINDOW_S))
    service = p.name_value(q["service"], "service") if "service" in q else None
    if "alert_fingerprint" not in q:
        if "start" not in q:
            raise p.ParamError("start", "is required (or give alert_fingerprint)")
        return IncidentQuery(p.time_range(q, limits, rt.clock_ns()), service, None)
    if "start" in q or "end" in q:
        raise p.ParamError("alert_fingerprint", "give either alert_fingerprint or start/end, not both")
    fingerprint = q["alert_fingerprint"].lower()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise p.ParamError("alert_fingerprint", "must be 16 hex digits (an alert's fingerprint)")
    alert = await alert_row(rt.warehouse, rt.scope(request), fingerprint)
    if alert is None:
        raise NotFoundError(f"alert_fingerprint: no alert {fingerprint} is stored")
    window_ns = _config(request).window_ns
    # The alert fired after fire_windows anomalous windows that began at startsAt; a firing
    # alert is analysed up to its latest message's window.
    start = int(alert["starts_ns"])
    end = int(alert["ends_ns"]) if int(alert["ends_ns"]) > start else int(alert["updated_ns"]) + window_ns
    end = min(max(end, start + window_ns), start + MAX_INCIDENT_WINDOW_S * p.NS_PER_S)
    return IncidentQuery(p.TimeRange(start, end), service or str(alert["service"]) or None, fingerprint)


async def _analyse(request: Request, query: IncidentQuery) -> IncidentData:
    rt = runtime(request)
    data = await load_incident(rt.warehouse, rt.scope(request), query.time, _config(request).threshold)
    if not data.window and not data.anomalies:
        raise NotFoundError(f"no spans or anomaly windows are stored from {iso_ns(query.time.start_ns)} "
                            f"to {iso_ns(query.time.end_ns)}")
    if query.service is not None and query.service not in data.services():
        raise NotFoundError(f"service: {query.service} has no spans or anomaly windows in the window")
    return data


def _within(data: IncidentData, service: str | None) -> set[str] | None:
    """A service and every service it calls (the causes its symptoms can have)."""
    if service is None:
        return None
    graph = data.graph()
    return {service} | (nx.descendants(graph, service) if service in graph else set())


def candidate_json(data: IncidentData, c: Candidate) -> dict[str, Any]:
    """A candidate with its evidence: anomaly windows, calls into it, trace figures and examples."""
    now, before = data.window.get(c.service), data.baseline.get(c.service)
    signal = trace_signal(now, before)
    windows = sorted((a for a in data.anomalies if a.service == c.service), key=lambda a: -a.score)
    return {
        "service": c.service, "score": c.score, "kind": c.kind,
        "evidence": {
            "anomaly_windows": [{"window_start": iso_ns(a.start_ns), "score": round(a.score, 4), "feature": a.reason,
                                 "detail": a.detail, "explained_by": list(a.inhibited_by),
                                 "trace_id": a.trace_id or None} for a in windows[:EVIDENCE_WINDOWS]],
            "calls_in": [{"caller": k.caller, "calls": k.calls, "errors": k.errors,
                          "example_trace_id": k.error_trace_id or None, "example_span_id": k.error_span_id or None}
                         for k in data.calls if k.callee == c.service],
            "traces": {
                "requests": now.requests if now else 0, "failed_requests": now.failed_requests if now else 0,
                "origin_errors": now.origin_errors if now else 0,
                "origin_error_rate": round(now.origin_rate, 4) if now else 0.0,
                "baseline_origin_error_rate": round(before.origin_rate, 4) if before else None,
                "self_ms_per_request": round(now.self_ms_per_request, 3) if now else 0.0,
                "baseline_self_ms_per_request": round(before.self_ms_per_request, 3) if before else None,
                "error_z": round(signal.error_z, 3), "self_time_rise": round(signal.self_rise, 3)},
            "examples": _examples(data, c),
        },
    }


def _examples(data: IncidentData, c: Candidate) -> list[dict[str, Any]]:
    now = data.window.get(c.service)
    if now is None:
        return []
    out = []
    if now.error_trace_id:
        out.append({"why": "error started here", "operation": now.error_operation, "trace_id": now.error_trace_id,
                    "span_id": now.error_span_id, "message": now.error_message or None})
    if now.slow_trace_id:
        out.append({"why": "most self time", "operation": now.slow_operation, "trace_id": now.slow_trace_id,
                    "span_id": now.slow_span_id, "message": None})
    return out if c.kind != "latency" else out[::-1]


def root_cause_json(data: IncidentData, ranked: list[Candidate]) -> dict[str, Any] | None:
    if not ranked or ranked[0].score <= 0:
        return None
    top = ranked[0]
    now = data.window.get(top.service)
    operation = (now.error_operation if top.kind == "error" else now.slow_operation) if now else ""
    peak = data.peak(top.service)
    return {"service": top.service, "operation": operation or (peak.operation if peak else "") or None,
            "kind": top.kind, "confidence": confidence(ranked, data)}


def _window_json(query: IncidentQuery) -> dict[str, Any]:
    return {"start": iso_ns(query.time.start_ns), "end": iso_ns(query.time.end_ns), "service": query.service,
            "alert_fingerprint": query.fingerprint}


async def incident_rca(request: Request, body: dict[str, Any]) -> Response:
    """POST /api/v1/rca with {start, end?, service?} or {alert_fingerprint, service?} (plus k,
    method): the services that may have caused the incident, most likely first, each with
    its evidence, and the root cause. 400 names a bad field; 404 when the alert or any data
    of the window is missing; warehouse errors go to the app's handlers."""
    q = _fields(body, RCA_FIELDS)
    k = p.int_value(q["k"], "k", 1, MAX_K) if "k" in q else DEFAULT_K
    method = p.choice(q["method"], "method", _METHODS) if "method" in q else DEFAULT_METHOD
    query = await _incident_query(request, q)
    data = await _analyse(request, query)
    ranked = rank(data, method, _within(data, query.service))
    return JsonResponse({
        "analysis": "incident", "window": _window_json(query), "method": method,
        "baseline": {"start": iso_ns(baseline_range(query.time).start_ns), "end": iso_ns(query.time.start_ns)},
        "root_cause": root_cause_json(data, ranked),
        "candidates": [candidate_json(data, c) for c in ranked[:k]],
        "call_graph": sorted([list(e) for e in data.graph().edges]),
    })


async def causal_analyze(request: Request) -> Response:
    """POST /api/v1/causal/analyze: the chain from the root cause to the symptoms, ordered by
    when each service first went anomalous or failed, the traces' counterfactual and the
    event chain with its one-line interpretation."""
    q = _fields(await json_body(request), CAUSAL_FIELDS)
    limit = p.int_value(q["limit"], "limit", 1, MAX_EVENTS) if "limit" in q else DEFAULT_EVENTS
    method = p.choice(q["method"], "method", _METHODS) if "method" in q else DEFAULT_METHOD
    query = await _incident_query(request, q)
    data = await _analyse(request, query)
    ranked = rank(data, method, _within(data, query.service))
    root = root_cause_json(data, ranked)
    body: dict[str, Any] = {"analysis": "causal", "window": _window_json(query), "method": method,
                            "root_cause": root, "chain": [], "counterfactual": None, "events": [],
                            "interpretation": ""}
    if root is None:
        return JsonResponse(body)
    cause, kind = root["service"], ranked[0].kind
    chain = chain_services(data, cause, kind)
    rt, scope = runtime(request), runtime(request).scope(request)
    symptom = (query.service if query.service and query.service != cause else symptoms(data.graph(), cause)[0])
    row = await counterfactual_row(rt.warehouse, scope, query.time, symptom, cause, base_self_ns(data, cause))
    per_service = max(1, limit // (2 * len(chain) + 1))
    spans = await event_span_rows(rt.warehouse, scope, query.time, per_service)
    logs = await error_log_rows(rt.warehouse, scope, query.time, per_service)
    body.update(chain=[hop_json(data, s, callee, iso_ns) for s, callee in chain],
                counterfactual=counterfactual(row, symptom, cause, kind),
                events=event_chain(data, [s for s, _ in chain], spans, logs, limit, iso_ns),
                interpretation=interpretation(data, chain, kind))
    return JsonResponse(body)


# incident_rca is called by /api/v1/rca's dispatch (api/routes/rca.py) for window and alert bodies.
ROUTES = [Route("/api/v1/causal/analyze", causal_analyze, methods=["POST"])]
