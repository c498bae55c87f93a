"""What incident analysis reads, as plain data: anomaly windows, trace figures per service, calls."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from agents.score.topology import explaining

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class AnomalyWindow:
    """One scored service-wide window of the score stage (ollystack_anomalies, SpanName '')."""

    service: str
    start_ns: int
    score: float
    reason: str  # the feature behind the score: latency_p50|latency_p95|error_rate|throughput
    detail: str = ""
    operation: str = ""
    inhibited_by: tuple[str, ...] = ()  # anomalous services the score stage said explain it
    callees: tuple[str, ...] = ()
    trace_id: str = ""


@dataclass(frozen=True)
class Traffic:
    """A service's spans over a period: requests (entry spans), origin errors (failing spans
    no child of which failed: the error started here), self time, and examples."""

    requests: int = 0
    failed_requests: int = 0
    origin_errors: int = 0
    spans: int = 0
    self_ns: int = 0
    first_error_ns: int | None = None
    error_operation: str = ""
    error_trace_id: str = ""
    error_span_id: str = ""
    error_message: str = ""
    slow_operation: str = ""
    slow_trace_id: str = ""
    slow_span_id: str = ""

    @property
    def origin_rate(self) -> float:
        return self.origin_errors / self.requests if self.requests else 0.0

    @property
    def self_ms_per_request(self) -> float:
        return self.self_ns / NS_PER_MS / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Call:
    """Calls from ``caller`` to ``callee`` (a span in another service whose parent is the caller's)."""

    caller: str
    callee: str
    calls: int
    errors: int
    first_error_ns: int | None = None
    error_trace_id: str = ""
    error_span_id: str = ""


@dataclass(frozen=True)
class IncidentData:
    """Everything one analysis reads: the window, the anomaly windows in it, the traces of
    the window and of the baseline period before it, and the calls between services."""

    start_ns: int
    end_ns: int
    threshold: float  # the score stage's alert threshold
    anomalies: tuple[AnomalyWindow, ...] = ()
    window: Mapping[str, Traffic] = field(default_factory=dict)
    baseline: Mapping[str, Traffic] = field(default_factory=dict)
    calls: tuple[Call, ...] = ()
    history: tuple[AnomalyWindow, ...] = ()  # windows before the incident (for model-based methods)

    def services(self) -> list[str]:
        names = set(self.window) | {a.service for a in self.anomalies}
        names |= {c.caller for c in self.calls} | {c.callee for c in self.calls}
        return sorted(names)

    def graph(self) -> nx.DiGraph[str]:
        """The call graph: calls seen in the window's traces, and callees the score stage learned."""
        g: nx.DiGraph[str] = nx.DiGraph()
        g.add_nodes_from(self.services())
        g.add_edges_from((c.caller, c.callee) for c in self.calls)
        g.add_edges_from((a.service, callee) for a in self.anomalies for callee in a.callees if callee != a.service)
        return g

    def peak(self, service: str) -> AnomalyWindow | None:
        """The service's highest-scored window."""
        mine = [a for a in self.anomalies if a.service == service]
        return max(mine, key=lambda a: (a.score, -a.start_ns)) if mine else None

    def first_anomalous_ns(self, service: str) -> int | None:
        times = [a.start_ns for a in self.anomalies if a.service == service and a.score >= self.threshold]
        return min(times) if times else None

    def anomalous(self) -> dict[str, str]:
        """Service -> the feature of its peak window, for services with a window at or over the threshold."""
        out = {}
        for service in self.services():
            peak = self.peak(service)
            if peak is not None and peak.score >= self.threshold:
                out[service] = peak.reason
        return out

    def explained(self) -> dict[str, list[str]]:
        """Anomalous services explained by another anomalous one (agents/score/topology.py's rule)."""
        return explaining(self.graph(), self.anomalous())


def traffic_by_service(rows: Iterable[Mapping[str, Any]]) -> dict[str, Traffic]:
    """Per-(service, operation) rows of api/queries/incident.py summed per service; the
    example error is the operation with the most origin errors, the slow one the operation
    with the most self time."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["service"]), []).append(row)
    out = {}
    for service, ops in groups.items():
        worst = max(ops, key=lambda r: (int(r["origin_errors"]), str(r["operation"])))
        slow = max(ops, key=lambda r: (int(r["total_self_ns"]), str(r["operation"])))
        firsts = [int(r["first_error_ns"]) for r in ops if int(r["errors"]) > 0]
        out[service] = Traffic(
            requests=sum(int(r["requests"]) for r in ops), failed_requests=sum(int(r["failed_requests"]) for r in ops),
            origin_errors=sum(int(r["origin_errors"]) for r in ops), spans=sum(int(r["spans"]) for r in ops),
            self_ns=sum(int(r["total_self_ns"]) for r in ops), first_error_ns=min(firsts) if firsts else None,
            error_operation=str(worst["operation"]) if int(worst["origin_errors"]) else "",
            error_trace_id=str(worst["error_trace_id"]), error_span_id=str(worst["error_span_id"]),
            error_message=str(worst["error_message"]), slow_operation=str(slow["operation"]),
            slow_trace_id=str(slow["slow_trace_id"]), slow_span_id=str(slow["slow_span_id"]))
    return out


def calls_of(rows: Iterable[Mapping[str, Any]]) -> tuple[Call, ...]:
    return tuple(Call(str(r["caller"]), str(r["callee"]), int(r["calls"]), int(r["errors"]),
                      int(r["first_error_ns"]) if int(r["errors"]) else None,
                      str(r["error_trace_id"]), str(r["error_span_id"])) for r in rows)


def windows_of(rows: Iterable[Mapping[str, Any]]) -> tuple[AnomalyWindow, ...]:
    """Service-wide anomaly rows (warming ones left out: they have no baseline yet)."""
    return tuple(AnomalyWindow(str(r["service"]), int(r["start_ns"]), float(r["score"]), str(r["reason"]),
                               str(r["detail"]), str(r["operation"]), tuple(r["inhibited_by"] or ()),
                               tuple(r["callees"] or ()), str(r["trace_id"]))
                 for r in rows if not int(r["warming"]))
