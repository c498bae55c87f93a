"""Causal chains (pure): from the root cause to the symptoms along the call graph, the
counterfactual the traces give, and one time-ordered list of the events behind it."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from api.rca.incident import Kind
from api.rca.incident_evidence import NS_PER_MS, IncidentData


def symptoms(graph: nx.DiGraph[str], root: str) -> list[str]:
    """The entry services (nobody calls them) that reach ``root``; ``root`` itself when none does."""
    if root not in graph:
        return [root]
    entries = sorted(s for s in nx.ancestors(graph, root) if graph.in_degree(s) == 0)
    return entries or [root]


def chain_services(data: IncidentData, root: str, kind: Kind = "error") -> list[tuple[str, str | None]]:
    """(service, the callee it reached the root through) on the shortest call paths from
    each symptom to ``root``, ordered by the time each first went anomalous or (for an
    error incident) failed; a service with neither comes after; ties: nearer the root first.
    A latency incident ignores failures: the usual background errors would come first."""
    graph = data.graph()
    via: dict[str, str | None] = {root: None}
    for entry in symptoms(graph, root):
        if entry == root or root not in graph:
            continue
        path = nx.shortest_path(graph, entry, root)
        for caller, callee in zip(path, path[1:], strict=False):
            via.setdefault(caller, callee)
    hops = {root: 0}
    if root in graph:
        hops.update(nx.single_source_shortest_path_length(graph.reverse(copy=False), root))

    def first(service: str) -> float:
        failed = _first_failure(data, service, via[service]) if kind == "error" else None
        times = [t for t in (data.first_anomalous_ns(service), failed) if t is not None]
        return min(times) if times else math.inf

    order = sorted(via, key=lambda s: (first(s), hops.get(s, 0), s))
    return [(s, via[s]) for s in order]


def _first_failure(data: IncidentData, service: str, callee: str | None) -> int | None:
    if callee is None:
        traffic = data.window.get(service)
        return traffic.first_error_ns if traffic and traffic.origin_errors else None
    calls = [c for c in data.calls if c.caller == service and c.callee == callee and c.errors]
    return calls[0].first_error_ns if calls else None


def hop_json(data: IncidentData, service: str, callee: str | None, iso: Any) -> dict[str, Any]:
    """One service of the chain with its evidence: first anomalous window, the failing calls
    to the next service towards the root, its requests and errors."""
    traffic = data.window.get(service)
    peak = data.peak(service)
    first = data.first_anomalous_ns(service)
    out: dict[str, Any] = {
        "service": service,
        "first_anomalous_at": iso(first) if first is not None else None,
        "first_failed_at": _maybe(iso, _first_failure(data, service, callee)),
        "requests": traffic.requests if traffic else 0,
        "failed_requests": traffic.failed_requests if traffic else 0,
        "peak_anomaly": None if peak is None else {"window_start": iso(peak.start_ns), "score": round(peak.score, 4),
                                                   "feature": peak.reason, "detail": peak.detail},
        "calls": None,
    }
    for call in data.calls:
        if call.caller == service and call.callee == callee:
            out["calls"] = {"callee": callee, "calls": call.calls, "errors": call.errors,
                            "example_trace_id": call.error_trace_id or None,
                            "example_span_id": call.error_span_id or None}
    return out


def _maybe(iso: Any, ns: int | None) -> str | None:
    return None if ns is None else str(iso(ns))


def interpretation(data: IncidentData, chain: list[tuple[str, str | None]], kind: Kind) -> str:
    """'inventory-service errors → order-service 5xx → api-gateway 5xx': the root cause, then
    each caller on the way to a symptom (5xx when its requests failed, slow for latency)."""
    if not chain:
        return ""
    via = dict(chain)
    root = next(s for s, callee in chain if callee is None)
    path = [root]
    callers = {callee: s for s, callee in chain if callee is not None}
    while path[-1] in callers and callers[path[-1]] not in path:
        path.append(callers[path[-1]])
    words = {"error": "errors", "latency": "slow", "throughput": "throughput change"}.get(kind, "anomalous")
    parts = [f"{root} {words}"]
    for service in path[1:]:
        traffic = data.window.get(service)
        failing = any(c.caller == service and c.callee == via[service] and c.errors for c in data.calls)
        if kind == "error":
            parts.append(f"{service} {'5xx' if failing and traffic and traffic.failed_requests else 'errors'}")
        else:
            parts.append(f"{service} {'slow' if kind == 'latency' else 'affected'}")
    return " → ".join(parts)


def counterfactual(row: Mapping[str, Any], symptom: str, cause: str, kind: Kind) -> dict[str, Any]:
    """The counterfactual the traces give, as figures and a sentence.

    Errors: of ``symptom``'s failed requests, the share whose trace has an error that started
    in ``cause``; had those errors not happened (those requests succeeding), the symptom's
    error rate would be the rest over all requests. Latency: the symptom's p95 with the
    cause's self time above its baseline taken out of each trace."""
    requests, failed, with_cause = int(row["requests"]), int(row["failed"]), int(row["failed_with_cause"])
    rate = failed / requests if requests else 0.0
    rate_without = (failed - with_cause) / requests if requests else 0.0
    share = with_cause / failed if failed else 0.0
    p95, p95_without = float(row["p95_ms"] or 0), float(row["p95_without_ms"] or 0)
    out: dict[str, Any] = {
        "symptom": symptom, "cause": cause, "requests": requests, "failed_requests": failed,
        "failed_with_cause": with_cause, "share_of_failures_with_cause": round(share, 4),
        "error_rate": round(rate, 4), "error_rate_without_cause": round(rate_without, 4),
        "p95_ms": round(p95, 3), "p95_without_cause_ms": round(p95_without, 3),
        "mean_ms": round(float(row["mean_ms"] or 0), 3),
        "mean_without_cause_ms": round(float(row["mean_without_ms"] or 0), 3),
    }
    if kind == "latency" or not failed:
        out["sentence"] = (f"{symptom}'s p95 latency in the window was {p95:.1f} ms; without {cause}'s extra "
                           f"self time it would have been {p95_without:.1f} ms")
    else:
        out["sentence"] = (f"of {symptom}'s failed requests in the window, {share * 100:.0f} % have {cause} errors "
                           f"in their call chain; without them the error rate would have been "
                           f"{rate_without * 100:.1f} % instead of {rate * 100:.1f} %")
    return out


def event_chain(data: IncidentData, services: Iterable[str], spans: Iterable[Mapping[str, Any]],
                logs: Iterable[Mapping[str, Any]], limit: int, iso: Any) -> list[dict[str, Any]]:
    """Spans, error logs and anomaly windows (at or over the threshold) of ``services`` as
    one list in time order, at most ``limit`` events (the earliest)."""
    keep = set(services)
    events: list[tuple[int, dict[str, Any]]] = []
    for a in data.anomalies:
        if a.service in keep and a.score >= data.threshold:
            events.append((a.start_ns, {"type": "anomaly", "service": a.service, "operation": a.operation or None,
                                        "trace_id": a.trace_id or None, "span_id": None,
                                        "detail": a.detail or f"{a.reason} score {a.score:.2f}",
                                        "score": round(a.score, 4)}))
    for s in spans:
        if s["service"] in keep:
            what = ("error started here" if not s["failed_child"] else "failed with its callee") if s["failed"] \
                else f"self time {float(s['self_ms']):.1f} ms"
            events.append((int(s["ts_ns"]), {"type": "span", "service": s["service"], "operation": s["operation"],
                                             "trace_id": s["trace_id"], "span_id": s["span_id"],
                                             "detail": f"{what} ({float(s['duration_ms']):.1f} ms"
                                                       f"{', ' + str(s['message']) if s['message'] else ''})",
                                             "score": None}))
    for log in logs:
        if log["service"] in keep:
            events.append((int(log["ts_ns"]), {"type": "log", "service": log["service"], "operation": None,
                                               "trace_id": log["trace_id"] or None, "span_id": log["span_id"] or None,
                                               "detail": f"{log['severity']}: {log['body']}", "score": None}))
    events.sort(key=lambda e: (e[0], e[1]["type"], e[1]["service"]))
    return [{"time": iso(t), **e} for t, e in events[:limit]]


def base_self_ns(data: IncidentData, service: str) -> int:
    """The service's self time per request before the window (ns)."""
    before = data.baseline.get(service)
    return int(before.self_ms_per_request * NS_PER_MS) if before else 0
