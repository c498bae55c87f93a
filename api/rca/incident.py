"""Ranking the services that may have caused an incident (pure): four methods, one chosen by measurement.

- ``rules``: the deepest anomalous service that no anomalous callee explains (the score
  stage's muting rule, agents/score/topology.py), then the other anomalous ones.
- ``pagerank``: MicroRCA-style personalized PageRank on the call graph: the walk moves from
  a caller to its callees in proportion to the callee's anomaly score (a little back
  towards callers), restarts at services in proportion to their scores; the rank is the
  visit share times the service's own score.
- ``traces``: what the window's traces say against the period before: errors that started
  in the service (failing spans with no failing child) and its self time per request.
- ``combined``: the traces' evidence plus a smaller weight of the anomaly scores, a
  caller's score muted while an anomalous callee explains it. Chosen by
  benchmarks/rca_incidents.py: over 20 injected incidents it and ``traces`` named the
  injected service first in all, in every run. With the seasonal detector ``rules`` did so
  in 100 %, ``pagerank`` in 85 % and DoWhy's gcm attribution in 50 % (1.5 s an incident);
  with the earlier robust z-score detector, which flagged more bystanders, ``rules`` in
  70-90 %, ``pagerank`` in 65-85 % and gcm in 35-50 %.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import networkx as nx

from api.rca.incident_evidence import IncidentData, Traffic

Method = Literal["combined", "traces", "rules", "pagerank"]
METHODS: tuple[Method, ...] = ("combined", "traces", "rules", "pagerank")
DEFAULT_METHOD: Method = "combined"
Kind = Literal["error", "latency", "throughput", "unknown"]

# Trace evidence: how many standard errors an origin-error rate must rise before it counts
# (noise stays under ERROR_Z_MIN; ERROR_Z_HALF more counts as half of full evidence), and the
# self-time rise (as a share of the baseline) that counts as half of full evidence.
ERROR_Z_MIN, ERROR_Z_HALF = 2.0, 3.0
LATENCY_RISE_HALF = 0.5
LATENCY_RISE_MIN = 0.2  # self time within 20 % of its baseline is noise
MIN_SELF_MS = 1.0
PRIOR_ERROR_RATE, PRIOR_REQUESTS = 0.01, 10
MUTED = 0.2  # share of an anomaly score kept while an anomalous callee explains it
ANOMALY_WEIGHT = 0.25  # combined: weight of the anomaly score against the trace evidence
BACKWARD = 0.1  # PageRank: weight of the step back to a caller, against the callee's score


@dataclass(frozen=True)
class TraceSignal:
    """A service's trace evidence: both parts in [0, 1)."""

    error: float
    latency: float
    error_z: float
    self_rise: float  # self time per request in the window over the baseline's, minus 1

    @property
    def strength(self) -> float:
        return max(self.error, self.latency)


@dataclass(frozen=True)
class Candidate:
    service: str
    score: float
    kind: Kind


def trace_signal(now: Traffic | None, before: Traffic | None) -> TraceSignal:
    """How much more errors start in a service, and how much slower its own work is, than before."""
    now, before = now or Traffic(), before or Traffic()
    if not now.requests:
        return TraceSignal(0.0, 0.0, 0.0, 0.0)
    # The baseline rate pulled towards 1 % by ten pseudo-requests, so an empty or error-free
    # baseline is not 0 (any error would then be infinitely many standard errors).
    p0 = min(0.99, (before.origin_errors + PRIOR_ERROR_RATE * PRIOR_REQUESTS) / (before.requests + PRIOR_REQUESTS))
    z = (now.origin_errors - now.requests * p0) / math.sqrt(now.requests * p0 * (1 - p0))
    error = (z - ERROR_Z_MIN) / (z - ERROR_Z_MIN + ERROR_Z_HALF) if z > ERROR_Z_MIN else 0.0
    base_ms = max(before.self_ms_per_request, MIN_SELF_MS) if before.requests else MIN_SELF_MS
    rise = now.self_ms_per_request / base_ms - 1 if before.requests else 0.0
    latency = rise / (rise + LATENCY_RISE_HALF) if rise > LATENCY_RISE_MIN else 0.0
    return TraceSignal(error, latency, z, rise)


def signals(data: IncidentData) -> dict[str, TraceSignal]:
    return {s: trace_signal(data.window.get(s), data.baseline.get(s)) for s in data.services()}


def _anomaly(data: IncidentData, service: str) -> float:
    peak = data.peak(service)
    return peak.score if peak is not None else 0.0


def _anomaly_share(data: IncidentData, service: str) -> float:
    """The peak score against the alert threshold, capped at 1: whatever scale the score stage uses."""
    return min(1.0, _anomaly(data, service) / data.threshold) if data.threshold > 0 else 0.0


def kind_of(data: IncidentData, service: str, signal: TraceSignal | None = None) -> Kind:
    """error or latency from the traces when they show it, else from the peak window's feature."""
    signal = signal or trace_signal(data.window.get(service), data.baseline.get(service))
    if signal.strength > 0:
        return "error" if signal.error >= signal.latency else "latency"
    peak = data.peak(service)
    reason = peak.reason if peak is not None else ""
    if reason == "error_rate":
        return "error"
    if reason.startswith("latency"):
        return "latency"
    return "throughput" if reason == "throughput" else "unknown"


def depth(graph: nx.DiGraph[str]) -> dict[str, int]:
    """Calls from the nearest entry (a service nobody calls; in a cycle, any of it) to each service."""
    roots = [n for n in graph if graph.in_degree(n) == 0] or list(graph)[:1]
    out: dict[str, int] = {}
    for root in roots:
        for node, hops in nx.single_source_shortest_path_length(graph, root).items():
            out[node] = min(hops, out.get(node, hops))
    return out


def rank_rules(data: IncidentData) -> dict[str, float]:
    """Anomalous services not explained by an anomalous callee, deepest first, then the
    explained ones, then the rest, each group by score (scores spaced so the groups keep order)."""
    graph, anomalous, explained = data.graph(), data.anomalous(), data.explained()
    depths = depth(graph)
    deepest = max(depths.values(), default=0) + 1
    out = {}
    for service in data.services():
        if service in anomalous and service not in explained and anomalous[service] != "throughput":
            out[service] = 2 + (depths.get(service, 0) + _anomaly_share(data, service)) / (deepest + 1)
        elif service in anomalous:
            out[service] = 1 + _anomaly_share(data, service) / 2
        else:
            out[service] = _anomaly_share(data, service) / 2
    return out


def rank_pagerank(data: IncidentData) -> dict[str, float]:
    """Personalized PageRank on the call graph weighted by anomaly scores, times the own score."""
    graph = data.graph()
    if not graph:
        return {}
    # Scores over the threshold, uncapped: how much more anomalous one service is matters here.
    score = {s: (_anomaly(data, s) / data.threshold if data.threshold > 0 else 0.0) + 1e-3 for s in graph}
    walk: nx.DiGraph[str] = nx.DiGraph()
    walk.add_nodes_from(graph)
    for caller, callee in graph.edges:
        walk.add_edge(caller, callee, weight=score[callee])
        if not walk.has_edge(callee, caller):
            walk.add_edge(callee, caller, weight=BACKWARD * score[caller])
    for service in graph:
        # A service more anomalous than every callee keeps the walk (MicroRCA's self edge).
        below = max((score[c] for c in graph.successors(service)), default=0.0)
        walk.add_edge(service, service, weight=max(0.0, score[service] - below))
    visits = nx.pagerank(walk, alpha=0.85, personalization=score, weight="weight")
    return {s: visits[s] * score[s] for s in graph}


def rank_traces(data: IncidentData) -> dict[str, float]:
    return {s: sig.strength for s, sig in signals(data).items()}


def rank_combined(data: IncidentData) -> dict[str, float]:
    """The trace evidence plus a quarter of the anomaly score, muted while an anomalous
    callee explains it: the score stage's windows decide between services the traces do not
    tell apart, and name a cause the traces miss (sampled away, or a throughput change).
    Half and half ranked the injected service second in 2 of 20 incidents, where a
    service the score stage flagged by chance outweighed a weak trace signal."""
    explained = data.explained()
    out = {}
    for service, sig in signals(data).items():
        anomaly = _anomaly_share(data, service)
        if service in explained:
            anomaly *= MUTED
        out[service] = (sig.strength + ANOMALY_WEIGHT * anomaly) / (1 + ANOMALY_WEIGHT)
    return out


RANKERS: Mapping[str, Callable[[IncidentData], dict[str, float]]] = {
    "combined": rank_combined, "traces": rank_traces, "rules": rank_rules, "pagerank": rank_pagerank}


def rank(data: IncidentData, method: str = DEFAULT_METHOD, within: set[str] | None = None) -> list[Candidate]:
    """Every service of the window, most likely cause first (ties by name); ``within``
    limits the candidates (a service and those it calls). Raises KeyError for an unknown method."""
    scores = RANKERS[method](data)
    sigs = signals(data)
    ranked = sorted(((s, v) for s, v in scores.items() if within is None or s in within), key=lambda x: (-x[1], x[0]))
    return [Candidate(s, round(v, 6), kind_of(data, s, sigs.get(s))) for s, v in ranked]


def confidence(ranked: list[Candidate], data: IncidentData) -> float:
    """How sure the top candidate is, in [0, 1]: its share of the top two scores (1 when it
    stands alone) times how strong its own evidence is (its trace evidence or its anomaly
    score against the threshold, whichever is larger)."""
    if not ranked or ranked[0].score <= 0:
        return 0.0
    top = ranked[0]
    second = ranked[1].score if len(ranked) > 1 else 0.0
    margin = top.score / (top.score + max(second, 0.0))
    signal = trace_signal(data.window.get(top.service), data.baseline.get(top.service))
    peak = data.peak(top.service)
    anomaly = min(1.0, peak.score / data.threshold) if peak is not None and data.threshold > 0 else 0.0
    return round(margin * max(signal.strength, anomaly), 3)
