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

from collections.abc import Iterable, Mapping, Sequence
from typing import Generic, TypeVar

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Features whose anomaly travels up the call path (callers wait for and fail with callees).
UPSTREAM_FEATURES = frozenset({"latency_p50", "latency_p95", "error_rate"})
THROUGHPUT = "throughput"

K = TypeVar("K")
V = TypeVar("V")
Node = tuple[str, str]  # (tenant, service)
_Child = tuple[str, str, int]  # (tenant, service, window)


def _empty(text: pa.Array) -> np.ndarray:
    empty: np.ndarray = pc.equal(text, "").to_numpy(zero_copy_only=False)
    return empty


class RecentMap(Generic[K, V]):
    """The entries added last, at most ``max_items`` (at least 2): entries go into a young
    generation; once it holds half the bound it becomes the old one, and the old one is
    dropped whole. Unlike an LRU there is no upkeep per entry, and a batch of entries is
    added by dict.update; the price is that an entry may go after half the bound."""

    def __init__(self, max_items: int) -> None:
        self._half = max(1, max_items // 2)
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def _room(self) -> None:
        if len(self._young) >= self._half:
            self._old, self._young = self._young, {}

    def get(self, key: K) -> V | None:
        value = self._young.get(key)
        return self._old.get(key) if value is None else value

    def setdefault(self, key: K, default: V) -> V:
        value = self.get(key)
        if value is None:
            self._room()
            value = self._young[key] = default
        return value

    def update(self, keys: Sequence[K], values: Sequence[V]) -> None:
        """Add ``keys[i]: values[i]`` in order (a key added again takes its new value)."""
        start = 0
        while start < len(keys):
            self._room()
            end = start + self._half - len(self._young)
            self._young.update(zip(keys[start:end], values[start:end], strict=True))
            start = end

    def pop_all(self, keys: Sequence[K]) -> list[tuple[K, V]]:
        """Remove the entries of ``keys`` that are here and return them."""
        out = []
        for generation in (self._old, self._young):
            if generation:
                out += [(key, generation.pop(key)) for key in generation.keys() & keys]
        return out


class CallGraph:
    """Caller -> callee edges per tenant, each with the last window it was seen in.

    An edge is a span whose parent span is in another service of the same tenant. Parents
    and children of one trace often come in different records (each service exports its
    own spans), so the services of recent spans, and children still waiting for their
    parent, are kept in two bounded maps: a pair missed when traffic outruns them costs
    nothing, because the same edge shows up again in the next trace."""

    def __init__(self, max_spans: int = 100_000) -> None:
        self.max_spans = max_spans
        self._services: RecentMap[str, Node] = RecentMap(max_spans)  # "trace\0span" -> its node
        self._waiting: RecentMap[str, list[_Child]] = RecentMap(max_spans)  # "trace\0parent" -> children
        self.edges: dict[str, dict[tuple[str, str], int]] = {}

    def observe(self, spans: pa.Table, nodes: Sequence[Node]) -> None:
        """The spans of one record; records the edges they close. Columns: trace_id, span_id,
        parent_span_id (strings, no nulls), window and node (int64: the span's (tenant,
        service) is ``nodes[node]``). Spans without a trace ID are ignored.

        A parent in the same record is found by a vectorized lookup, whichever of the two
        comes first. Then the record's spans are remembered, the children of earlier
        records that waited for one of them get their edge, and the children left look
        for their parent among the spans of earlier records, or wait for it."""
        trace, span, parent = (spans.column(c).combine_chunks() for c in ("trace_id", "span_id", "parent_span_id"))
        traced = ~_empty(trace)
        if not traced.any():
            return
        node, window = spans.column("node").to_numpy(), spans.column("window").to_numpy()
        is_parent, is_child = traced & ~_empty(span), traced & ~_empty(parent)
        refs = pc.binary_join_element_wise(trace, span, "\x00")
        refs = refs if is_parent.all() else pc.filter(refs, pa.array(is_parent))
        parent_refs = pc.binary_join_element_wise(trace, parent, "\x00")
        parent_rows = np.flatnonzero(is_parent)
        found = pc.fill_null(pc.index_in(parent_refs, value_set=refs), -1).to_numpy()
        inside = is_child & (found >= 0)
        self._link_all(nodes, node[parent_rows[found[inside]]], node[inside], window[inside])
        remembered = refs.to_pylist()
        self._services.update(remembered, list(map(nodes.__getitem__, node[is_parent].tolist())))
        for ref, waiting in self._waiting.pop_all(remembered):
            owner = self._services.get(ref)
            if owner is not None:
                for tenant, service, child_window in waiting:
                    self._link(owner, (tenant, service), child_window)
        outside = is_child & (found < 0)
        if not outside.any():
            return
        for ref, child, child_window in zip(pc.filter(parent_refs, pa.array(outside)).to_pylist(),
                                            node[outside].tolist(), window[outside].tolist(), strict=True):
            owner = self._services.get(ref)
            if owner is None:
                self._waiting.setdefault(ref, []).append((*nodes[child], child_window))
            else:
                self._link(owner, nodes[child], child_window)

    def _link_all(self, nodes: Sequence[Node], parents: np.ndarray, children: np.ndarray, windows: np.ndarray) -> None:
        """Edges of parent and child nodes (index arrays), each once with its last window."""
        calls = parents != children
        if not calls.any():
            return
        pairs, at = np.unique(parents[calls] * len(nodes) + children[calls], return_inverse=True)
        last = np.full(len(pairs), np.iinfo(np.int64).min, np.int64)
        np.maximum.at(last, at, windows[calls])
        for pair, window in zip(pairs.tolist(), last.tolist(), strict=True):
            self._link(nodes[pair // len(nodes)], nodes[pair % len(nodes)], window)

    def _link(self, parent: Node, child: Node, window: int) -> None:
        if parent[0] == child[0]:
            self.add_edge(parent[0], parent[1], child[1], window)

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
