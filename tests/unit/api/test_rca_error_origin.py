"""The error origin: the deepest failing span whose own children did not fail."""
from __future__ import annotations

import pytest

from api.rca.error_origin import error_origin
from api.rca.trace_tree import SpanNode, build_call_tree, span_node

MS = 1_000_000
T = "a" * 32


def node(span_id: str, parent: str, start_ms: int, error: bool = False, trace: str = T,
         service: str = "", operation: str = "") -> SpanNode:
    return SpanNode(trace_id=trace, span_id=span_id, parent_id=parent, service=service or f"svc-{span_id}",
                    operation=operation or f"op-{span_id}", kind="server", start_ns=start_ms * MS,
                    end_ns=(start_ms + 10) * MS, error=error, message=f"failed in {span_id}" if error else "")


ORIGINS = [
    ("nothing failed", [node("r", "", 0), node("a", "r", 1)], None),
    ("the first cause, not the last symptom",
     [node("r", "", 0, True), node("a", "r", 1, True), node("b", "a", 2, True), node("c", "a", 3)], ("b", 1, 1)),
    ("a failing span whose children succeeded", [node("r", "", 0, True), node("a", "r", 1)], ("r", 1, 1)),
    ("the deepest of two failing branches",
     [node("r", "", 0, True), node("a", "r", 1, True), node("b", "a", 2, True), node("c", "r", 1, True)],
     ("b", 1, 1)),
    ("the earliest of two at one depth",
     [node("r", "", 0), node("a", "r", 5, True), node("b", "r", 2, True)], ("b", 1, 1)),
    ("a failure under a span that did not fail", [node("r", "", 0), node("a", "r", 1, True)], ("a", 1, 1)),
    ("the origin most failing traces share",
     [node("r1", "", 0, True, "1" * 32), node("p1", "r1", 1, True, "1" * 32, "pay", "charge"),
      node("r2", "", 20, True, "2" * 32), node("p2", "r2", 21, True, "2" * 32, "pay", "charge"),
      node("r3", "", 5, True, "3" * 32), node("d3", "r3", 6, True, "3" * 32, "db", "query")], ("p1", 3, 2)),
    ("a tie between origins goes to the earliest",
     [node("r1", "", 10, True, "1" * 32), node("r2", "", 0, True, "2" * 32)], ("r2", 2, 1)),
]


@pytest.mark.parametrize(("spans", "expected"), [(s, e) for _, s, e in ORIGINS], ids=[i for i, _, _ in ORIGINS])
def test_error_origin(spans: list[SpanNode], expected: tuple[str, int, int] | None) -> None:
    found = error_origin(build_call_tree(spans))
    got = None if found is None else (found.key[1], found.failing_traces, found.agreeing_traces)
    assert got == expected


def test_the_message_comes_from_the_status_else_the_exception_event() -> None:
    row = {"ts_ns": 0, "TraceId": T, "SpanId": "s", "ParentSpanId": "", "SpanName": "op",
           "SpanKind": "SPAN_KIND_SERVER", "ServiceName": "svc", "Duration": 5, "StatusCode": "Error",
           "StatusMessage": "",
           "event_names": ["log", "exception"], "event_attributes": [{}, {"exception.message": "boom"}]}
    made = span_node(row)
    assert (made.message, made.kind, made.error, made.end_ns) == ("boom", "server", True, 5)
    assert span_node({**row, "StatusMessage": "declined"}).message == "declined"
