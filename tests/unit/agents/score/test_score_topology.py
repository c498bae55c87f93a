"""Call paths: edges learned from parent and child spans, and anomalies explained by the services
they call, so one fault alerts on the service that has it and not on every caller."""
from __future__ import annotations

from typing import Any

import networkx as nx
import pyarrow as pa
import pytest

from agents.score.logic import ScoreEngine
from agents.score.topology import CallGraph, explained_by, explaining
from tests.support.score_points import CHAIN, CONFIG, NOW_NS, T0, chain_spans

NORMAL = 12
W0 = T0 // CONFIG.window_ns  # the absolute index of window 0
Span = tuple[str, str, str, str, str, int]  # (tenant, service, trace, span, parent, window)


def observe(graph: CallGraph, *spans: Span) -> None:
    """``spans`` as one record."""
    nodes = list(dict.fromkeys((s[0], s[1]) for s in spans))
    graph.observe(pa.table({
        "trace_id": [s[2] for s in spans], "span_id": [s[3] for s in spans], "parent_span_id": [s[4] for s in spans],
        "window": pa.array([s[5] for s in spans], pa.int64()),
        "node": pa.array([nodes.index((s[0], s[1])) for s in spans], pa.int64())}), nodes)


CHILD_FIRST: list[Span] = [("", "orders", "t1", "b", "a", 3), ("", "edge", "t1", "a", "", 3)]
PARENT_FIRST: list[Span] = [("", "orders", "t3", "b", "", 4), ("", "payments", "t3", "c", "b", 5)]


@pytest.mark.parametrize("records", [
    [CHILD_FIRST[:1], CHILD_FIRST[1:]], [CHILD_FIRST[1:], CHILD_FIRST[:1]], [CHILD_FIRST],
    [CHILD_FIRST[::-1]],
], ids=["child-then-parent", "parent-then-child", "child-first-in-a-record", "parent-first-in-a-record"])
def test_an_edge_is_learned_whichever_span_comes_first_in_or_across_records(records: list[list[Span]]) -> None:
    graph = CallGraph()
    for record in records:
        observe(graph, *record)
    assert graph.edges == {"": {("edge", "orders"): 3}}


def test_edges_keep_their_last_window_and_are_forgotten() -> None:
    graph = CallGraph()
    observe(graph, *CHILD_FIRST)
    observe(graph, *PARENT_FIRST, ("", "orders", "t3", "d", "b", 4))  # same service: no edge
    assert graph.edges == {"": {("edge", "orders"): 3, ("orders", "payments"): 5}}
    assert graph.callees("", "orders", since=4) == ["payments"] and graph.callees("", "edge", since=4) == []
    observe(graph, ("", "orders", "t2", "b", "a", 9), ("", "edge", "t2", "a", "", 9), ("", "orders", "t2", "e", "a", 7))
    assert graph.edges[""][("edge", "orders")] == 9
    graph.forget(before=6)
    assert graph.edges == {"": {("edge", "orders"): 9}}


def test_spans_without_a_trace_or_span_id_make_no_edge() -> None:
    graph = CallGraph()
    observe(graph, ("", "edge", "", "a", "", 1), ("", "orders", "", "b", "a", 1),  # no trace
            ("", "edge", "t1", "", "", 1), ("", "orders", "t1", "c", "", 1))  # no span ID, no parent
    assert graph.edges == {}


def test_edges_stay_within_a_tenant_and_the_span_maps_stay_bounded() -> None:
    graph = CallGraph(max_spans=2)
    observe(graph, ("a", "edge", "t1", "p", "", 1))
    observe(graph, ("b", "orders", "t1", "c", "p", 1))  # another tenant's span claims that parent
    observe(graph, ("a", "edge", "t9", "p", "", 1), ("b", "orders", "t9", "c", "p", 1))  # in one record too
    assert graph.edges == {}
    # Children waiting for their parent: only the latest two are kept, so only they get an edge.
    for i in range(5):
        observe(graph, ("a", f"orders{i}", f"t{i}", "c", "missing", 1))
    for i in range(5):
        observe(graph, ("a", "edge", f"t{i}", "missing", "", 1))
    assert graph.callees("a", "edge", since=1) == ["orders3", "orders4"]
    # Spans that may be a parent: only the latest two are kept, so the child of an older one finds none.
    for i in range(5):
        observe(graph, ("a", "edge", f"u{i}", "p", "", 2))
    observe(graph, ("a", "payments", "u4", "c", "p", 2))  # its parent is one of the latest two
    observe(graph, ("a", "stock", "u0", "c", "p", 2))  # its parent was forgotten
    assert graph.callees("a", "edge", since=2) == ["payments"]


def chain() -> nx.DiGraph[str]:
    return nx.DiGraph([("edge", "orders"), ("orders", "payments"), ("edge", "stock")])


@pytest.mark.parametrize("anomalous, expected", [
    ({"edge": "latency_p95", "orders": "latency_p95", "payments": "latency_p95"},
     {"edge": ["orders", "payments"], "orders": ["payments"]}),
    ({"edge": "error_rate", "stock": "error_rate", "orders": "latency_p50"},
     {"edge": ["orders", "stock"]}),  # either kind of callee anomaly explains a caller's
    ({"edge": "throughput", "orders": "throughput", "payments": "latency_p95"},
     {"orders": ["edge"]}),  # throughput: explained by the caller's
    ({"edge": "throughput", "orders": "latency_p95"}, {}),
    ({"edge": "latency_p95", "elsewhere": "latency_p95"}, {}),
], ids=["chain", "latency-or-errors", "throughput-upstream", "kinds-differ", "unrelated"])
def test_an_anomaly_is_explained_by_anomalous_services_down_the_call_path(
        anomalous: dict[str, str], expected: dict[str, list[str]]) -> None:
    assert explaining(chain(), anomalous) == expected


def test_in_a_cycle_neither_service_explains_the_other() -> None:
    graph = nx.DiGraph([("a", "b"), ("b", "a"), ("b", "c")])
    assert explaining(graph, {"a": "latency_p95", "b": "latency_p95"}) == {}
    assert explaining(graph, {"a": "latency_p95", "b": "latency_p95", "c": "error_rate"}) == \
        {"a": ["c"], "b": ["c"]}
    assert explained_by({"a": ["c"], "b": ["c"]}) == {"c": ["a", "b"]}


def feed(engine: ScoreEngine, windows: range, **fault: Any) -> list[Any]:
    out = []
    for w in windows:
        engine.add_table(0, chain_spans(w, **(fault if NORMAL <= w <= NORMAL + 5 else {})), now_s=0.0, now_ns=NOW_NS)
        closed = engine.close_ready(now_s=0.0)
        if closed is not None:
            out.append(closed)
    return out


@pytest.mark.parametrize("fault, feature", [({"slow": "payments"}, "latency"), ({"failing": "orders"}, "error_rate")])
def test_a_fault_alerts_on_its_service_only_and_names_the_callers_it_explains(fault: dict[str, str],
                                                                              feature: str) -> None:
    engine = ScoreEngine(CONFIG)
    closed = feed(engine, range(NORMAL + 14), **fault)
    culprit = next(iter(fault.values()))
    alerts = [(a.labels["service"], a.status) for c in closed for a in c.alerts]
    assert alerts == [(culprit, "firing"), (culprit, "resolved")]
    fired = next(a for c in closed for a in c.alerts if a.status == "firing")
    assert fired.annotations["feature"].startswith(feature)
    callers = CHAIN[:CHAIN.index(culprit)]
    assert fired.annotations["impact"].endswith(", ".join(sorted(callers)))
    rows = [r for c in closed for r in c.rows
            if r["SpanName"] == "" and r["Timestamp"] >= T0 + NORMAL * CONFIG.window_ns]
    for caller in callers:  # scored anomalous, but explained by the culprit
        explained = [r for r in rows if r["ServiceName"] == caller and r["AlertInhibitedBy"]]
        assert explained and all(culprit in r["AlertInhibitedBy"] for r in explained)
        assert max(r["Score"] for r in explained) >= CONFIG.threshold
    assert {r["ServiceName"]: r["Callees"] for r in rows[-3:]} == {"edge": ["orders"], "orders": ["payments"],
                                                                   "payments": []}


def test_restore_rebuilds_the_call_graph_from_the_stored_rows() -> None:
    live = ScoreEngine(CONFIG)
    rows = [r for c in feed(live, range(NORMAL)) for r in c.rows]
    restored = ScoreEngine(CONFIG)
    restored.restore(rows, [])
    assert restored.graph.edges == {"": {("edge", "orders"): W0 + NORMAL - 2, ("orders", "payments"): W0 + NORMAL - 2}}
    # Straight after the restart, before any call was seen again, the callee's fault alerts alone.
    later = feed(restored, range(NORMAL, NORMAL + 14), slow="payments")
    assert [(a.labels["service"], a.status) for c in later for a in c.alerts] == \
        [("payments", "firing"), ("payments", "resolved")]
