"""Where a request's failure began: per trace, the deepest failing span none of whose own
children failed (the first cause, not the last symptom that the caller reported)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from api.rca.trace_tree import CallTree, SpanKey


@dataclass(frozen=True)
class ErrorOrigin:
    """The origin chosen over all traces, and how many failing traces agree on it.

    ``share`` = traces whose own origin has this origin's service and operation / traces
    with a failing span: 1.0 when every failing trace failed first at the same place."""

    key: SpanKey
    failing_traces: int
    agreeing_traces: int

    @property
    def share(self) -> float:
        return self.agreeing_traces / self.failing_traces


def trace_origins(tree: CallTree) -> dict[str, SpanKey]:
    """Each failing trace's origin: among its failing spans without a failing child, the
    deepest, then the earliest to start (then the lowest span ID, so the answer is stable)."""
    best: dict[str, SpanKey] = {}
    for key, node in tree.nodes.items():
        if not node.error or any(tree.nodes[child].error for child in tree.children(key)):
            continue
        rank = (-tree.depth[key], node.start_ns, node.span_id)
        held = best.get(node.trace_id)
        if held is None or rank < (-tree.depth[held], tree.nodes[held].start_ns, held[1]):
            best[node.trace_id] = key
    return best


def error_origin(tree: CallTree) -> ErrorOrigin | None:
    """The origin shared by most failing traces (ties: the earliest), its earliest
    occurrence; None when no span failed."""
    origins = trace_origins(tree)
    if not origins:
        return None
    groups: dict[tuple[str, str], list[SpanKey]] = defaultdict(list)
    for key in origins.values():
        groups[(tree.nodes[key].service, tree.nodes[key].operation)].append(key)

    def first(keys: list[SpanKey]) -> SpanKey:
        return min(keys, key=lambda k: (tree.nodes[k].start_ns, k))

    chosen = min(groups.values(), key=lambda keys: (-len(keys), tree.nodes[first(keys)].start_ns, first(keys)))
    return ErrorOrigin(first(chosen), failing_traces=len(origins), agreeing_traces=len(chosen))
