"""The evidence of a request analysis: every span, log and exemplar a finding rests on, and
the services, span IDs and trace IDs they name (what an explanation may cite)."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from api.presentation.rows import iso_ns
from api.rca.trace_tree import CallTree, SpanKey
from core.types import Row

Finding = Literal["critical_path", "error_origin", "slowest_self_time"]


class Evidence:
    """Evidence items in the order added, each (finding, span) or (finding, log) once."""

    def __init__(self, tree: CallTree) -> None:
        self.tree = tree
        self.items: list[Row] = []
        self._seen: set[tuple[str, str, str, str, str]] = set()

    def _add(self, finding: Finding, kind: str, at_ns: int, trace_id: str, span_id: str, service: str,
             description: str) -> None:
        mark = (finding, kind, trace_id, span_id, str(at_ns))
        if mark in self._seen:
            return
        self._seen.add(mark)
        self.items.append({"finding": finding, "type": kind, "timestamp": iso_ns(at_ns), "trace_id": trace_id,
                           "span_id": span_id, "service": service, "description": description})

    def span(self, finding: Finding, key: SpanKey, description: str) -> None:
        node = self.tree.nodes[key]
        self._add(finding, "span", node.start_ns, node.trace_id, node.span_id, node.service, description)

    def log(self, finding: Finding, log: Mapping[str, Any], description: str) -> None:
        self._add(finding, "log", int(log["ts_ns"]), log["TraceId"], log["SpanId"], log["ServiceName"],
                  description)

    def exemplars(self, exemplars: Iterable[Mapping[str, Any]]) -> None:
        """Exemplars recorded in a span already in the evidence, under that span's finding."""
        findings: dict[tuple[str, str], Finding] = {}
        for item in self.items:
            if item["type"] == "span":
                findings.setdefault((item["trace_id"], item["span_id"]), item["finding"])
        for ex in exemplars:
            finding = findings.get((ex["TraceId"], ex["SpanId"]))
            if finding is not None:
                value = ex["Value"]
                shown = f"{value:g}" if isinstance(value, (int, float)) and math.isfinite(value) else "null"
                self._add(finding, "exemplar", int(ex["ts_ns"]), ex["TraceId"], ex["SpanId"], ex["ServiceName"],
                          f"{ex['MetricName']} = {shown}")

    def to_json(self) -> Row:
        return {
            "services": sorted({item["service"] for item in self.items}),
            "span_ids": sorted({item["span_id"] for item in self.items if item["span_id"]}),
            "trace_ids": sorted({item["trace_id"] for item in self.items if item["trace_id"]}),
            "items": self.items,
        }
