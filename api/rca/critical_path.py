"""The critical path of a request and each span's exclusive (self) time, from its call tree.

The walk is Jaeger UI's (``CriticalPath/index.tsx``): start at a span's end, step into the
child that finishes last before the current point, and when a span has no such child left,
the time back to its start is its own and the walk returns to its parent at that span's
start. So a child counts only while it blocks its parent, and overlapping children do not
add up. Unlike Jaeger, a child ending exactly where the returning one started still counts
(sequential calls), several traces or parentless spans are children of one virtual root
covering them all (time between them is on no span and is not counted), and detached spans
(follows-from, fire-and-forget) are off the path, as Jaeger drops FOLLOWS_FROM children.
"""
from __future__ import annotations

from dataclasses import dataclass

from api.rca.trace_tree import CallTree, SpanKey

ROOT: SpanKey = ("", "")  # the virtual root above every trace


@dataclass(frozen=True)
class PathStep:
    """A span on the critical path: the time it alone determined the request's latency."""

    key: SpanKey
    self_ns: int  # the sum of its sections on the path
    first_ns: int  # where its earliest section starts
    sections: int


def critical_sections(tree: CallTree) -> list[tuple[SpanKey, int, int]]:
    """The path as (span, start_ns, end_ns) sections, latest first; the virtual root's
    sections (gaps between traces) are left out."""
    if not tree.roots:
        return []
    parent: dict[SpanKey, SpanKey] = {root: ROOT for root in tree.roots}
    blocking = {**tree.blocking, ROOT: sorted(
        tree.roots, key=lambda k: (-tree.window[k].end_ns, -tree.window[k].start_ns, k))}
    cursor: dict[SpanKey, int] = {}  # per span, the next candidate in its blocking children
    sections: list[tuple[SpanKey, int, int]] = []
    current = ROOT
    until = max(tree.window[k].end_ns for k in tree.roots)
    while True:
        children = blocking.get(current, [])
        i = cursor.get(current, 0)
        while i < len(children) and tree.window[children[i]].end_ns > until:
            i += 1  # it overlaps what is already on the path: it did not block here
        cursor[current] = i + 1
        if i < len(children):
            child = children[i]
            parent.setdefault(child, current)
            if tree.window[child].end_ns < until and current != ROOT:
                sections.append((current, tree.window[child].end_ns, until))
            current, until = child, tree.window[child].end_ns
            continue
        start = tree.window[current].start_ns if current != ROOT else until
        if current != ROOT:
            if start < until:
                sections.append((current, start, until))
            current, until = parent[current], start
            continue
        return sections


def critical_path(tree: CallTree) -> list[PathStep]:
    """One step per span on the path, in the order the spans first entered it (time order)."""
    steps: dict[SpanKey, PathStep] = {}
    for key, start, end in critical_sections(tree):
        found = steps.get(key)
        steps[key] = PathStep(key, end - start, start, 1) if found is None else PathStep(
            key, found.self_ns + end - start, min(found.first_ns, start), found.sections + 1)
    return sorted(steps.values(), key=lambda s: (s.first_ns, tree.depth.get(s.key, 0), s.key))


def self_times_ns(tree: CallTree) -> dict[SpanKey, int]:
    """Each span's exclusive time: its window minus the union of its blocking children's
    windows (detached children run on their own time)."""
    out: dict[SpanKey, int] = {}
    for key, window in tree.window.items():
        covered, reach = 0, window.start_ns
        for child in sorted(tree.blocking.get(key, []), key=lambda k: tree.window[k].start_ns):
            start, end = max(tree.window[child].start_ns, reach), tree.window[child].end_ns
            if end > start:
                covered += end - start
                reach = end
        out[key] = window.end_ns - window.start_ns - covered
    return out
