"""Which service calls which, learned from the spans the score stage reads, and which
anomalies it explains (pure, bounded).

A slow or failing service makes every caller's spans slow or failing too: a caller's
span lasts as long as its call. Scoring each service alone then alerts on the whole
call path for one fault (a slow payment-service alerted order-service and api-gateway
as well in the demo). As Alertmanager's inhibition rules do for alerts, an anomaly in a
service is muted while a service it calls, directly or further down, is anomalous in the
same window: the alert names the deepest service, and its annotations name the callers
it explains. Throughput is the other way round: fewer requests at the edge mean fewer
everywhere below, so a throughput anomaly is explained by an anomalous caller."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

import networkx as nx

# Features whose anomaly travels up the call path (callers wait for and fail with callees).
UPSTREAM_FEATURES = frozenset({"latency_p50", "latency_p95", "error_rate"})
THROUGHPUT = "throughput"

_SpanRef = tuple[str, str]  # (trace ID, span ID)


class CallGraph:
    """Caller -> callee edges per tenant, each with the last window it was seen in.

    An edge is a span whose parent span is in another service. Parents and children of
    one trace come in different records (each service exports its own spans), so the
    services of recent spans, and children still waiting for their parent, are kept in
    two bounded LRU maps: a pair missed when traffic outruns them costs nothing, because
    the same edge shows up again in the next trace."""

    def __init__(self, max_spans: int = 100_000) -> None:
        self.max_spans = max_spans
        self._services: OrderedDict[_SpanRef, tuple[str, str]] = OrderedDict()  # span -> (tenant, service)
        self._waiting: OrderedDict[_SpanRef, list[tuple[str, str, int]]] = OrderedDict()  # parent -> children
        self.edges: dict[str, dict[tuple[str, str], int]] = {}

    def observe(self, tenant: str, service: str, trace_id: str, span_id: str, parent_id: str, window: int) -> None:
        """One span of ``service``; records the edges it closes."""
        if not trace_id:
            return
        if span_id:
            ref = (trace_id, span_id)
            self._services[ref] = (tenant, service)
            self._services.move_to_end(ref)
            if len(self._services) > self.max_spans:
                self._services.popitem(last=False)
            for child_tenant, child, child_window in self._waiting.pop(ref, ()):
                if child_tenant == tenant:
                    self.add_edge(tenant, service, child, child_window)
        if not parent_id:
            return
        parent = self._services.get((trace_id, parent_id))
        if parent is None:
            self._waiting.setdefault((trace_id, parent_id), []).append((tenant, service, window))
            if len(self._waiting) > self.max_spans:
                self._waiting.popitem(last=False)
        elif parent[0] == tenant:
            self.add_edge(tenant, parent[1], service, window)

    def add_edge(self, tenant: str, caller: str, callee: str, window: int) -> None:
        if caller == callee:
            return
        edges = self.edges.setdefault(tenant, {})
        edges[(caller, callee)] = max(window, edges.get((caller, callee), window))

    def callees(self, tenant: str, service: str, since: int) -> list[str]:
        """The services ``service`` called in windows >= ``since``, sorted."""
        return sorted(callee for (caller, callee), seen in self.edges.get(tenant, {}).items()
                      if caller == service and seen >= since)

    def graph(self, tenant: str, since: int) -> nx.DiGraph[str]:
        """The call graph of ``tenant`` over windows >= ``since``."""
        g: nx.DiGraph[str] = nx.DiGraph()
        g.add_edges_from(edge for edge, seen in self.edges.get(tenant, {}).items() if seen >= since)
        return g

    def forget(self, before: int) -> None:
        """Drop edges last seen before window ``before`` (services come and go)."""
        for tenant in list(self.edges):
            kept = {edge: seen for edge, seen in self.edges[tenant].items() if seen >= before}
            if kept:
                self.edges[tenant] = kept
            else:
                del self.edges[tenant]


def explaining(graph: nx.DiGraph[str], anomalous: Mapping[str, str]) -> dict[str, list[str]]:
    """For each anomalous service (service -> the feature behind its anomaly), the anomalous
    services that explain it; services explained by none are left out.

    A latency or error anomaly is explained by an anomalous service strictly downstream (it
    calls it, directly or not, and is not called back by it: in a cycle nobody explains the
    other, so both alert); a throughput anomaly by one strictly upstream."""
    out: dict[str, list[str]] = {}
    for service, reason in anomalous.items():
        if service not in graph:
            continue
        if reason in UPSTREAM_FEATURES:
            near, far = nx.descendants(graph, service), nx.ancestors(graph, service)
            kinds = UPSTREAM_FEATURES
        elif reason == THROUGHPUT:
            near, far = nx.ancestors(graph, service), nx.descendants(graph, service)
            kinds = frozenset({THROUGHPUT})
        else:
            continue
        causes = sorted(s for s in near - far if anomalous.get(s) in kinds)
        if causes:
            out[service] = causes
    return out


def explained_by(explained: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """The inverse of ``explaining``: for each cause, the services whose anomaly it explains."""
    out: dict[str, list[str]] = {}
    for service, causes in explained.items():
        for cause in causes:
            out.setdefault(cause, []).append(service)
    return {cause: sorted(services) for cause, services in out.items()}
