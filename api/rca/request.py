"""Request analysis: why one request (a correlation ID or a trace) was slow or failed,
computed from its spans, logs and exemplars (pure: rows in, JSON out).

Confidence of the root cause, by kind:
- error: the error origin's ``share``, the failing traces whose own origin has the same
  service and operation, divided by the traces with a failing span;
- latency: the span's self time on the critical path divided by the critical path's length.
An error outranks latency: a failed request is explained by its failure first.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from api.presentation.rows import is_error_log, iso_ns, log_level, ms
from api.queries.correlation import CorrelationRows
from api.rca.critical_path import PathStep, critical_path, self_times_ns
from api.rca.error_origin import ErrorOrigin, error_origin
from api.rca.evidence import Evidence
from api.rca.trace_tree import CallTree, SpanKey, build_call_tree, span_node
from core.types import Row

SLOWEST_SPANS = 10
ORIGIN_LOGS = 20
LOG_BODY_MAX_CHARS = 1000


def _span_ref(tree: CallTree, key: SpanKey) -> Row:
    node = tree.nodes[key]
    return {"span_id": node.span_id, "trace_id": node.trace_id, "service": node.service,
            "operation": node.operation, "start": iso_ns(node.start_ns), "end": iso_ns(node.end_ns),
            "duration_ms": ms(node.end_ns - node.start_ns), "error": node.error}


def _share(part_ns: int, whole_ns: int) -> float:
    return round(part_ns / whole_ns, 6) if whole_ns > 0 else 0.0


def _path_json(tree: CallTree, steps: list[PathStep], total_ns: int) -> list[Row]:
    return [{**_span_ref(tree, s.key), "self_time_ms": ms(s.self_ns), "share": _share(s.self_ns, total_ns)}
            for s in steps]


def _origin_logs(rows: CorrelationRows, key: SpanKey) -> list[Row]:
    found = [log for log in rows.logs if (log["TraceId"], log["SpanId"]) == key and is_error_log(log)]
    return found[:ORIGIN_LOGS]


def _origin_json(tree: CallTree, origin: ErrorOrigin, logs: list[Row]) -> Row:
    node = tree.nodes[origin.key]
    return {
        **_span_ref(tree, origin.key), "depth": tree.depth[origin.key], "message": node.message,
        "failing_traces": origin.failing_traces, "agreeing_traces": origin.agreeing_traces,
        "share": round(origin.share, 6),
        "logs": [{"timestamp": iso_ns(log["ts_ns"]), "trace_id": log["TraceId"], "span_id": log["SpanId"],
                  "service": log["ServiceName"],
                  "level": log_level(int(log["SeverityNumber"]), log["SeverityText"]),
                  "body": str(log["Body"])[:LOG_BODY_MAX_CHARS]} for log in logs],
    }


def _failing_ancestors(tree: CallTree, key: SpanKey) -> list[SpanKey]:
    """The failing spans above the origin: the symptoms its failure propagated to."""
    out = []
    parents = list(tree.graph.predecessors(key))
    while parents:
        key = parents[0]
        if tree.nodes[key].error:
            out.append(key)
        parents = list(tree.graph.predecessors(key))
    return out


def _services(rows: CorrelationRows, tree: CallTree, self_ns: dict[SpanKey, int],
              steps: list[PathStep]) -> list[Row]:
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    for node in tree.nodes.values():
        stats[node.service]["spans"] += 1
        stats[node.service]["error_spans"] += node.error
        stats[node.service]["self_ns"] += self_ns[node.key]
    for log in rows.logs:
        stats[log["ServiceName"]]["error_logs"] += is_error_log(log)
    for step in steps:
        stats[tree.nodes[step.key].service]["path_ns"] += step.self_ns
    return [{"service": name, "spans": c["spans"], "error_spans": c["error_spans"], "error_logs": c["error_logs"],
             "self_time_ms": ms(c["self_ns"]), "critical_path_ms": ms(c["path_ns"])}
            for name, c in sorted(stats.items(), key=lambda item: (-item[1]["path_ns"], item[0]))]


def _finding(tree: CallTree, key: SpanKey, kind: str, confidence: float, summary: str) -> Row:
    node = tree.nodes[key]
    return {"kind": kind, "service": node.service, "operation": node.operation, "span_id": node.span_id,
            "trace_id": node.trace_id, "confidence": round(confidence, 6), "summary": summary}


def analyze_request(rows: CorrelationRows, slowest: int = SLOWEST_SPANS) -> Row:
    """The request analysis of a non-empty lookup; see the module docstring for confidences."""
    tree = build_call_tree(span_node(span) for span in rows.spans)
    steps = critical_path(tree)
    total_ns = sum(step.self_ns for step in steps)
    self_ns = self_times_ns(tree)
    on_path = {step.key for step in steps}
    evidence = Evidence(tree)
    findings: list[Row] = []

    origin = error_origin(tree)
    origin_json: Row | None = None
    if origin is not None:
        node = tree.nodes[origin.key]
        logs = _origin_logs(rows, origin.key)
        origin_json = _origin_json(tree, origin, logs)
        evidence.span("error_origin", origin.key, f"failed first: {node.message or 'status Error'}")
        for log in logs:
            evidence.log("error_origin", log, str(log["Body"])[:200])
        for symptom in _failing_ancestors(tree, origin.key):
            evidence.span("error_origin", symptom, f"failed after its callee: {tree.nodes[symptom].message}")
        findings.append(_finding(
            tree, origin.key, "error", origin.share,
            f"{node.service} {node.operation} failed first ({origin.agreeing_traces} of {origin.failing_traces} "
            f"failing traces): {node.message or 'status Error'}"))

    for step in steps:
        evidence.span("critical_path", step.key,
                      f"{ms(step.self_ns)} ms of {ms(total_ns)} ms on the critical path")
    if steps:
        top = max(steps, key=lambda s: (s.self_ns, -s.first_ns))
        node = tree.nodes[top.key]
        findings.append(_finding(
            tree, top.key, "latency", _share(top.self_ns, total_ns),
            f"{node.service} {node.operation} took {ms(top.self_ns)} ms of the {ms(total_ns)} ms critical path"))

    ranked = sorted(tree.nodes, key=lambda k: (-self_ns[k], tree.nodes[k].start_ns, k))[:slowest]
    for key in ranked:
        evidence.span("slowest_self_time", key, f"self time {ms(self_ns[key])} ms")
    evidence.exemplars(rows.exemplars)

    starts = [n.start_ns for n in tree.nodes.values()]
    ends = [n.end_ns for n in tree.nodes.values()]
    root_cause = None
    if findings:
        first = findings[0]
        root_cause = {name: first[name] for name in ("service", "operation", "kind", "confidence", "span_id",
                                                     "trace_id")}
    return {
        "analysis": "request",
        "correlation_id": rows.correlation_id,
        "trace_ids": sorted({n.trace_id for n in tree.nodes.values()} | set(rows.trace_ids)),
        "truncated": rows.truncated,
        "time_range": {"start": iso_ns(min(starts)), "end": iso_ns(max(ends))} if starts else None,
        "duration_ms": ms(max(ends) - min(starts)) if starts else 0.0,
        "critical_path_ms": ms(total_ns),
        "critical_path": _path_json(tree, steps, total_ns),
        "error_origin": origin_json,
        "slowest_self_time": [{**_span_ref(tree, k), "self_time_ms": ms(self_ns[k]), "on_critical_path": k in on_path}
                              for k in ranked],
        "services": _services(rows, tree, self_ns, steps),
        "root_cause": root_cause,
        "findings": findings,
        "evidence": evidence.to_json(),
    }


def summary_line(analysis: dict[str, Any]) -> str:
    """One line naming the root cause, for logs and the CLI's header."""
    cause = analysis["root_cause"]
    if cause is None:
        return "no spans: nothing to analyse"
    return (f"{cause['kind']} in {cause['service']} {cause['operation']} "
            f"(confidence {cause['confidence']:.2f})")
