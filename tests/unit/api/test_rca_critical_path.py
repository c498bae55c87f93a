"""The critical path and self times of a call tree, Jaeger-style, from plain spans."""
from __future__ import annotations

import pytest

from api.rca.critical_path import critical_path, self_times_ns
from api.rca.trace_tree import SpanNode, build_call_tree

MS = 1_000_000
T = "a" * 32


def node(span_id: str, parent: str, start_ms: int, end_ms: int, kind: str = "internal", trace: str = T,
         error: bool = False) -> SpanNode:
    return SpanNode(trace_id=trace, span_id=span_id, parent_id=parent, service=f"svc-{span_id}",
                    operation=f"op-{span_id}", kind=kind, start_ns=start_ms * MS, end_ns=end_ms * MS,
                    error=error, message="")


PATHS = [
    ("one span", [node("r", "", 0, 100)], [("r", 100)]),
    ("sequential children each block", [node("r", "", 0, 100), node("a", "r", 10, 40), node("b", "r", 40, 90)],
     [("r", 20), ("a", 30), ("b", 50)]),
    ("overlapping children do not add", [node("r", "", 0, 100), node("a", "r", 10, 60), node("b", "r", 20, 80)],
     [("r", 40), ("b", 60)]),
    ("a child outliving its parent is clipped", [node("r", "", 0, 100), node("a", "r", 50, 150)],
     [("r", 50), ("a", 50)]),
    ("a child starting before its parent (clock skew) is clipped",
     [node("r", "", 10, 100), node("a", "r", 0, 50)], [("a", 40), ("r", 50)]),
    ("nested calls", [node("r", "", 0, 100), node("a", "r", 10, 90), node("b", "a", 20, 80),
                      node("c", "b", 30, 50)], [("r", 20), ("a", 20), ("b", 40), ("c", 20)]),
    ("a consumer follows from its producer", [node("r", "", 0, 100, "producer"),
                                              node("c", "r", 50, 300, "consumer")], [("r", 100)]),
    ("a fire-and-forget child starting after its parent ended",
     [node("r", "", 0, 100), node("a", "r", 120, 200)], [("r", 100)]),
    ("a child's descendants follow it off the path",
     [node("r", "", 0, 100, "producer"), node("c", "r", 50, 300, "consumer"), node("d", "c", 60, 290)],
     [("r", 100)]),
    ("traces one after the other: the gap is on no span",
     [node("r1", "", 0, 100, trace="1" * 32), node("r2", "", 200, 250, trace="2" * 32)],
     [("r1", 100), ("r2", 50)]),
    ("concurrent traces: the one ending last",
     [node("r1", "", 0, 100, trace="1" * 32), node("r2", "", 50, 120, trace="2" * 32)], [("r2", 70)]),
    ("a span whose parent is missing heads its own tree",
     [node("r", "", 0, 100), node("o", "zz", 20, 150)], [("o", 130)]),
    ("a parent cycle is broken at its earliest span",
     [node("x", "y", 0, 100), node("y", "x", 10, 50)], [("x", 60), ("y", 40)]),
    ("a zero-length child at its parent's end", [node("r", "", 0, 100), node("a", "r", 100, 100)], [("r", 100)]),
    ("same span IDs in two traces stay apart",
     [node("r", "", 0, 100, trace="1" * 32), node("a", "r", 10, 20, trace="1" * 32),
      node("r", "", 0, 50, trace="2" * 32)], [("r", 90), ("a", 10)]),
]


@pytest.mark.parametrize(("spans", "expected"), [(s, e) for _, s, e in PATHS], ids=[i for i, _, _ in PATHS])
def test_critical_path(spans: list[SpanNode], expected: list[tuple[str, int]]) -> None:
    tree = build_call_tree(spans)
    assert [(step.key[1], step.self_ns // MS) for step in critical_path(tree)] == expected


def test_steps_can_hold_several_sections_of_one_span() -> None:
    tree = build_call_tree([node("r", "", 0, 100), node("a", "r", 10, 40), node("b", "r", 50, 90)])
    steps = {step.key[1]: step for step in critical_path(tree)}
    assert steps["r"].sections == 3 and steps["r"].self_ns == 30 * MS


def test_an_empty_tree_has_no_path() -> None:
    assert critical_path(build_call_tree([])) == []


SELF_TIMES = [
    ("overlapping children are counted once", [node("r", "", 0, 100), node("a", "r", 10, 60),
                                               node("b", "r", 20, 80)], {"r": 30, "a": 50, "b": 60}),
    ("a detached child does not count against its parent",
     [node("r", "", 0, 100, "producer"), node("c", "r", 50, 300, "consumer")], {"r": 100, "c": 250}),
    ("a clipped child counts inside its parent only", [node("r", "", 0, 100), node("a", "r", 50, 150)],
     {"r": 50, "a": 50}),
]


@pytest.mark.parametrize(("spans", "expected"), [(s, e) for _, s, e in SELF_TIMES], ids=[i for i, _, _ in SELF_TIMES])
def test_self_times(spans: list[SpanNode], expected: dict[str, int]) -> None:
    got = self_times_ns(build_call_tree(spans))
    assert {key[1]: value // MS for key, value in got.items()} == expected


def test_a_deep_trace_needs_no_recursion() -> None:
    spans = [node("s0", "", 0, 10_000)] + [node(f"s{i}", f"s{i - 1}", i, 10_000 - i) for i in range(1, 5000)]
    steps = critical_path(build_call_tree(spans))
    assert len(steps) == 5000 and sum(step.self_ns for step in steps) == 10_000 * MS
