"""The call tree of a request: spans of one or more traces as a forest, each span's blocking window.

A span *blocks* its parent only while both run: a child is clipped to its parent's window
(clock skew between services moves children a little outside it), and a child that cannot
block its parent is *detached*: a message consumer under its producer (follows-from), or a
child that starts only after its parent ended (fire-and-forget). Detached spans keep their
own window and head their own subtree, as do spans whose parent is not stored.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from api.presentation.rows import is_error_span

SpanKey = tuple[str, str]  # (trace ID, span ID): span IDs are unique within a trace only
EXCEPTION_EVENT = "exception"


@dataclass(frozen=True)
class SpanNode:
    """One span as the analysis needs it; times are Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_id: str
    service: str
    operation: str
    kind: str  # lowercase OTel kind without prefix: server, client, producer, consumer, internal
    start_ns: int
    end_ns: int
    error: bool
    message: str  # the status message, else the first exception event's exception.message

    @property
    def key(self) -> SpanKey:
        return (self.trace_id, self.span_id)


@dataclass(frozen=True)
class Window:
    """Where a span can block its parent: [start_ns, end_ns] after clipping."""

    start_ns: int
    end_ns: int


@dataclass
class CallTree:
    """Spans as a forest (networkx DiGraph, parent -> child), with each span's depth, its
    blocking window, and the children that block it sorted by window end, latest first."""

    graph: nx.DiGraph[SpanKey]
    nodes: dict[SpanKey, SpanNode]
    roots: list[SpanKey]  # spans without a stored parent (and parent cycles broken), by start
    detached: list[SpanKey]  # spans that cannot block their parent
    depth: dict[SpanKey, int]
    window: dict[SpanKey, Window]
    blocking: dict[SpanKey, list[SpanKey]]

    def children(self, key: SpanKey) -> list[SpanKey]:
        return list(self.graph.successors(key))


def _kind(raw: str) -> str:
    return raw.lower().removeprefix("span_kind_")


def _message(span: Mapping[str, Any]) -> str:
    if span.get("StatusMessage"):
        return str(span["StatusMessage"])
    for name, attributes in zip(span.get("event_names", []), span.get("event_attributes", []), strict=False):
        if name == EXCEPTION_EVENT and attributes.get("exception.message"):
            return str(attributes["exception.message"])
    return ""


def span_node(span: Mapping[str, Any]) -> SpanNode:
    """A stored span row (schemas.row_columns.SPAN_COLUMNS) as a SpanNode."""
    start = int(span["ts_ns"])
    return SpanNode(
        trace_id=span["TraceId"], span_id=span["SpanId"], parent_id=span["ParentSpanId"],
        service=span["ServiceName"], operation=span["SpanName"], kind=_kind(span["SpanKind"]),
        start_ns=start, end_ns=start + max(0, int(span["Duration"])), error=is_error_span(span),
        message=_message(span))


def _detached(parent: SpanNode, child: SpanNode, parent_window: Window) -> bool:
    follows_from = child.kind == "consumer" and parent.kind == "producer"
    outside = child.start_ns >= parent_window.end_ns or child.end_ns <= parent_window.start_ns
    # A zero-length child at its parent's very start or end still ran inside it.
    inside_point = child.start_ns == child.end_ns and parent_window.start_ns <= child.start_ns <= parent_window.end_ns
    return follows_from or (outside and not inside_point)


def build_call_tree(spans: Iterable[SpanNode]) -> CallTree:
    """The forest of ``spans`` (the first of duplicate keys wins). Parent cycles in bad data
    are broken at the earliest span of the cycle."""
    nodes: dict[SpanKey, SpanNode] = {}
    for node in spans:
        nodes.setdefault(node.key, node)
    graph: nx.DiGraph[SpanKey] = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for key, node in nodes.items():
        parent = (node.trace_id, node.parent_id)
        if node.parent_id and parent in nodes and parent != key:
            graph.add_edge(parent, key)
    tree = CallTree(graph, nodes, [], [], {}, {}, {})
    in_time_order = sorted(nodes, key=lambda k: (nodes[k].start_ns, k))
    for key in in_time_order:
        if graph.in_degree(key) == 0:
            _place(tree, key)
    for key in in_time_order:  # what is left sits in or under a parent cycle
        if key not in tree.depth:
            graph.remove_edges_from(list(graph.in_edges(key)))
            _place(tree, key)
    return tree


def _place(tree: CallTree, root: SpanKey) -> None:
    """Depth, window and blocking children of the subtree under ``root`` (iteratively:
    traces can be deeper than Python's recursion limit)."""
    node = tree.nodes[root]
    tree.roots.append(root)
    tree.depth[root] = 0
    tree.window[root] = Window(node.start_ns, node.end_ns)
    stack = [root]
    while stack:
        key = stack.pop()
        parent, window = tree.nodes[key], tree.window[key]
        blocking = []
        for child_key in tree.graph.successors(key):
            if child_key in tree.depth:
                continue
            child = tree.nodes[child_key]
            tree.depth[child_key] = tree.depth[key] + 1
            if _detached(parent, child, window):
                tree.window[child_key] = Window(child.start_ns, child.end_ns)
                tree.detached.append(child_key)
            else:
                tree.window[child_key] = Window(max(child.start_ns, window.start_ns),
                                                 min(child.end_ns, window.end_ns))
                blocking.append(child_key)
            stack.append(child_key)
        blocking.sort(key=lambda k: (-tree.window[k].end_ns, -tree.window[k].start_ns, k))
        tree.blocking[key] = blocking
