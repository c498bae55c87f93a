"""The analyses as the API, the CLI and the chat assistant run them: a request body in, the
findings out (plain JSON data), within one tenant scope.

Routes, ``ollystack rca`` and the chat tools all call these, so every caller validates
and answers alike. ParamError (400) names a bad field; NotFoundError (404) says what is
missing; WarehouseError passes through."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from agents.score.config import ScoreConfig
from api import params as p
from api.bodies import text_fields
from api.presentation.rows import iso_ns
from api.queries.causal import counterfactual_row, error_log_rows, event_span_rows
from api.queries.correlation import CorrelationRows
from api.queries.incident import alert_row
from api.queries.scope import QueryScope
from api.queries.trace_rows import load_trace
from api.rca.causal import (
    base_self_ns,
    chain_services,
    counterfactual,
    event_chain,
    hop_json,
    interpretation,
    symptoms,
)
from api.rca.incident import DEFAULT_METHOD, METHODS, Candidate, rank
from api.rca.incident_evidence import IncidentData
from api.rca.incident_limits import DEFAULT_EVENTS, DEFAULT_K, MAX_EVENTS, MAX_INCIDENT_WINDOW_S, MAX_K
from api.rca.incident_load import baseline_range, load_incident
from api.rca.incident_report import IncidentQuery, candidate_json, fingerprint_value, root_cause_json, within
from api.rca.request import analyze_request
from api.responses import NotFoundError
from sinks.warehouse import Warehouse

REQUEST_FIELDS = frozenset({"correlation_id", "trace_id"})
RCA_FIELDS = frozenset({"start", "end", "service", "alert_fingerprint", "k", "method"})
CAUSAL_FIELDS = frozenset({"start", "end", "service", "alert_fingerprint", "limit", "method"})
ACCEPTED = ("a request: {\"correlation_id\"} or {\"trace_id\"}; an incident: {\"start\", \"end\"?, \"service\"?} "
            "or {\"alert_fingerprint\"}")
_METHODS: dict[str, str] = {m: m for m in METHODS}

Correlation = Callable[[QueryScope, str], Awaitable[CorrelationRows]]


@dataclass(frozen=True)
class AnalysisContext:
    """What an analysis reads: the warehouse within ``scope``, the limits, "now" for
    default windows, the score stage's settings (windows, threshold) and the correlation
    reader (the API's goes through its cache)."""

    warehouse: Warehouse
    scope: QueryScope
    limits: p.Limits
    now_ns: int
    score: ScoreConfig
    correlation: Correlation


def analysis_kind(body: Mapping[str, Any]) -> Literal["request", "incident"]:
    """``request`` when the body names a correlation or trace ID, ``incident`` when it names
    a window or an alert; ParamError otherwise."""
    if REQUEST_FIELDS & body.keys():
        return "request"
    if (RCA_FIELDS - {"k", "method"}) & body.keys():
        return "incident"
    raise p.ParamError("body", f"names nothing to analyse; accepted: {ACCEPTED}")


async def findings(ctx: AnalysisContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """The request or the incident analysis, as the body's keys say."""
    if analysis_kind(body) == "request":
        return await request_findings(ctx, body)
    return await incident_findings(ctx, body)


async def request_rows(ctx: AnalysisContext, body: Mapping[str, Any]) -> CorrelationRows:
    """The rows of the correlation ID or trace the body names; NotFoundError (404) when
    nothing visible is stored under it."""
    for name in body:
        if name not in REQUEST_FIELDS:
            shown = str(name)[:64].encode("unicode_escape").decode()
            raise p.ParamError(shown, "unknown field; a request analysis takes correlation_id or trace_id")
    if len(body) != 1:
        raise p.ParamError("body", "give correlation_id or trace_id, not both")
    for name, value in body.items():
        if not isinstance(value, str):
            raise p.ParamError(name, "must be a string")
    q = text_fields(body)
    if "correlation_id" in q:
        cid = p.correlation_id(q["correlation_id"])
        rows = await ctx.correlation(ctx.scope, cid)
        if rows.empty:
            raise NotFoundError(f"no spans, logs or metrics are stored under correlation ID {cid!r}")
        return rows
    trace_id = p.trace_id(q["trace_id"])
    rows = await load_trace(ctx.warehouse, ctx.scope, trace_id, ctx.limits)
    if rows.empty:
        raise NotFoundError(f"no spans, logs or metrics are stored for trace {trace_id}")
    return rows


async def request_findings(ctx: AnalysisContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """Critical path, error origin, slowest self times, services, root cause and evidence."""
    return analyze_request(await request_rows(ctx, body))


async def _incident_query(ctx: AnalysisContext, q: Mapping[str, str]) -> IncidentQuery:
    """The window and service: given, or those of the alert's latest incident."""
    limits = replace(ctx.limits, max_window_s=min(ctx.limits.max_window_s, MAX_INCIDENT_WINDOW_S))
    service = p.name_value(q["service"], "service") if "service" in q else None
    if "alert_fingerprint" not in q:
        if "start" not in q:
            raise p.ParamError("start", "is required (or give alert_fingerprint)")
        return IncidentQuery(p.time_range(q, limits, ctx.now_ns), service, None)
    if "start" in q or "end" in q:
        raise p.ParamError("alert_fingerprint", "give either alert_fingerprint or start/end, not both")
    fingerprint = fingerprint_value(q["alert_fingerprint"])
    alert = await alert_row(ctx.warehouse, ctx.scope, fingerprint)
    if alert is None:
        raise NotFoundError(f"alert_fingerprint: no alert {fingerprint} is stored")
    window_ns = ctx.score.window_ns
    # The alert fired after fire_windows anomalous windows that began at startsAt; a firing
    # alert is analysed up to its latest message's window.
    start = int(alert["starts_ns"])
    end = int(alert["ends_ns"]) if int(alert["ends_ns"]) > start else int(alert["updated_ns"]) + window_ns
    end = min(max(end, start + window_ns), start + MAX_INCIDENT_WINDOW_S * p.NS_PER_S)
    return IncidentQuery(p.TimeRange(start, end), service or str(alert["service"]) or None, fingerprint)


async def _incident_data(ctx: AnalysisContext, query: IncidentQuery) -> IncidentData:
    data = await load_incident(ctx.warehouse, ctx.scope, query.time, ctx.score.threshold)
    if not data.window and not data.anomalies:
        raise NotFoundError(f"no spans or anomaly windows are stored from {iso_ns(query.time.start_ns)} "
                            f"to {iso_ns(query.time.end_ns)}")
    if query.service is not None and query.service not in data.services():
        raise NotFoundError(f"service: {query.service} has no spans or anomaly windows in the window")
    return data


def _fields(body: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, str]:
    for name in body:
        if name not in allowed:
            shown = str(name)[:64].encode("unicode_escape").decode()
            raise p.ParamError(shown, f"unknown field; allowed: {', '.join(sorted(allowed))}")
    return text_fields(body)


@dataclass(frozen=True)
class _Ranked:
    method: str
    query: IncidentQuery
    data: IncidentData
    ranked: list[Candidate]


async def _ranked(ctx: AnalysisContext, q: Mapping[str, str]) -> _Ranked:
    """The incident the fields name, its data and its candidates ranked by their method."""
    method = p.choice(q["method"], "method", _METHODS) if "method" in q else DEFAULT_METHOD
    query = await _incident_query(ctx, q)
    data = await _incident_data(ctx, query)
    return _Ranked(method, query, data, rank(data, method, within(data, query.service)))


async def incident_findings(ctx: AnalysisContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """{start, end?, service?} or {alert_fingerprint, service?} (plus k, method): the
    services that may have caused the incident, most likely first, each with its evidence,
    and the root cause. NotFoundError when the alert or any data of the window is missing."""
    q = _fields(body, RCA_FIELDS)
    k = p.int_value(q["k"], "k", 1, MAX_K) if "k" in q else DEFAULT_K
    r = await _ranked(ctx, q)
    query, data, ranked = r.query, r.data, r.ranked
    return {
        "analysis": "incident", "window": query.to_json(), "method": r.method,
        "baseline": {"start": iso_ns(baseline_range(query.time).start_ns), "end": iso_ns(query.time.start_ns)},
        "root_cause": root_cause_json(data, ranked),
        "candidates": [candidate_json(data, c) for c in ranked[:k]],
        "call_graph": sorted([list(e) for e in data.graph().edges]),
    }


async def causal_findings(ctx: AnalysisContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """The chain from the root cause to the symptoms, ordered by when each service first
    went anomalous or failed, the traces' counterfactual and the event chain with its
    one-line interpretation."""
    q = _fields(body, CAUSAL_FIELDS)
    limit = p.int_value(q["limit"], "limit", 1, MAX_EVENTS) if "limit" in q else DEFAULT_EVENTS
    r = await _ranked(ctx, q)
    query, data, ranked = r.query, r.data, r.ranked
    root = root_cause_json(data, ranked)
    out: dict[str, Any] = {"analysis": "causal", "window": query.to_json(), "method": r.method,
                           "root_cause": root, "chain": [], "counterfactual": None, "events": [],
                           "interpretation": ""}
    if root is None:
        return out
    cause, kind = root["service"], ranked[0].kind
    chain = chain_services(data, cause, kind)
    symptom = (query.service if query.service and query.service != cause else symptoms(data.graph(), cause)[0])
    row = await counterfactual_row(ctx.warehouse, ctx.scope, query.time, symptom, cause, base_self_ns(data, cause))
    per_service = max(1, limit // (2 * len(chain) + 1))
    spans = await event_span_rows(ctx.warehouse, ctx.scope, query.time, per_service)
    logs = await error_log_rows(ctx.warehouse, ctx.scope, query.time, per_service)
    out.update(chain=[hop_json(data, s, callee, iso_ns) for s, callee in chain],
               counterfactual=counterfactual(row, symptom, cause, kind),
               events=event_chain(data, [s for s, _ in chain], spans, logs, limit, iso_ns),
               interpretation=interpretation(data, chain, kind))
    return out
