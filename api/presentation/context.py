"""The correlation context, timeline and impact built from a lookup's rows (pure: rows in, JSON out)."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from api.presentation.rows import (
    exemplar_json,
    is_error_log,
    is_error_span,
    iso_ns,
    log_json,
    log_level,
    ms,
    span_json,
)
from api.queries.correlation import CorrelationRows
from core.types import Row

DESCRIPTION_MAX_CHARS = 200


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of ``values``; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _span_end_ns(span: Row) -> int:
    return int(span["ts_ns"]) + int(span["Duration"])


def _short(text: str) -> str:
    return text if len(text) <= DESCRIPTION_MAX_CHARS else text[: DESCRIPTION_MAX_CHARS - 1] + "…"


def build_timeline(rows: CorrelationRows) -> list[Row]:
    """Spans, logs and exemplars in time order, each with type, service, description,
    duration, level and error flag."""
    items: list[tuple[int, int, Row]] = []
    for span in rows.spans:
        error = is_error_span(span)
        items.append((int(span["ts_ns"]), 0, {
            "timestamp": iso_ns(span["ts_ns"]), "type": "span", "service": span["ServiceName"],
            "description": _short(span["SpanName"]), "duration_ms": ms(span["Duration"]),
            "level": "ERROR" if error else "INFO", "error": error,
            "trace_id": span["TraceId"], "span_id": span["SpanId"],
        }))
    for log in rows.logs:
        items.append((int(log["ts_ns"]), 1, {
            "timestamp": iso_ns(log["ts_ns"]), "type": "log", "service": log["ServiceName"],
            "description": _short(log["Body"]), "duration_ms": None,
            "level": log_level(int(log["SeverityNumber"]), log["SeverityText"]), "error": is_error_log(log),
            "trace_id": log["TraceId"], "span_id": log["SpanId"],
        }))
    for ex in rows.exemplars:
        items.append((int(ex["ts_ns"]), 2, {
            "timestamp": iso_ns(ex["ts_ns"]), "type": "metric", "service": ex["ServiceName"],
            "description": _short(f"{ex['MetricName']} = {ex['Value']}"), "duration_ms": None,
            "level": "INFO", "error": False, "trace_id": ex["TraceId"], "span_id": ex["SpanId"],
        }))
    items.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in items]


def _traces(rows: CorrelationRows) -> list[Row]:
    by_trace: dict[str, list[Row]] = defaultdict(list)
    for span in rows.spans:
        by_trace[span["TraceId"]].append(span)
    out = []
    for trace_id, spans in by_trace.items():
        roots = [s for s in spans if not s["ParentSpanId"]] or spans[:1]
        start = min(int(s["ts_ns"]) for s in spans)
        out.append({
            "trace_id": trace_id,
            "root_service": roots[0]["ServiceName"],
            "root_operation": roots[0]["SpanName"],
            "start": iso_ns(start),
            "duration_ms": ms(max(_span_end_ns(s) for s in spans) - start),
            "span_count": len(spans),
            "error_count": sum(1 for s in spans if is_error_span(s)),
            "services": sorted({s["ServiceName"] for s in spans}),
            "spans": [span_json(s, rows.correlation_id) for s in spans],
        })
    out.sort(key=lambda t: (t["start"], t["trace_id"]))
    return out


def _services(rows: CorrelationRows) -> list[Row]:
    stats: dict[str, Row] = {}

    def entry(name: str, ts: int) -> Row:
        found = stats.setdefault(name, {"name": name, "spans": 0, "logs": 0, "metrics": 0, "errors": 0,
                                        "first_ns": ts, "last_ns": ts})
        found["first_ns"], found["last_ns"] = min(found["first_ns"], ts), max(found["last_ns"], ts)
        return found

    for span in rows.spans:
        item = entry(span["ServiceName"], int(span["ts_ns"]))
        item["spans"] += 1
        item["errors"] += is_error_span(span)
    for log in rows.logs:
        item = entry(log["ServiceName"], int(log["ts_ns"]))
        item["logs"] += 1
        item["errors"] += is_error_log(log)
    for ex in rows.exemplars:
        entry(ex["ServiceName"], int(ex["ts_ns"]))["metrics"] += 1
    out = sorted(stats.values(), key=lambda s: (s["first_ns"], s["name"]))
    for item in out:
        item["first_seen"], item["last_seen"] = iso_ns(item.pop("first_ns")), iso_ns(item.pop("last_ns"))
    return out


def _errors(rows: CorrelationRows) -> list[Row]:
    found: list[tuple[int, Row]] = []
    for span in rows.spans:
        if is_error_span(span):
            found.append((int(span["ts_ns"]), {
                "type": "span", "timestamp": iso_ns(span["ts_ns"]), "service": span["ServiceName"],
                "trace_id": span["TraceId"], "span_id": span["SpanId"], "description": span["SpanName"],
                "message": span["StatusMessage"]}))
    for log in rows.logs:
        if is_error_log(log):
            found.append((int(log["ts_ns"]), {
                "type": "log", "timestamp": iso_ns(log["ts_ns"]), "service": log["ServiceName"],
                "trace_id": log["TraceId"], "span_id": log["SpanId"],
                "description": log_level(int(log["SeverityNumber"]), log["SeverityText"]),
                "message": _short(log["Body"])}))
    found.sort(key=lambda item: item[0])
    return [item[1] for item in found]


def _time_bounds(rows: CorrelationRows) -> tuple[int, int]:
    starts = [int(r["ts_ns"]) for r in (*rows.spans, *rows.logs, *rows.exemplars)]
    ends = [_span_end_ns(s) for s in rows.spans] + starts
    return min(starts), max(ends)


def build_context(rows: CorrelationRows) -> Row:
    """The full context of a non-empty lookup: summary, traces, logs, metrics, services,
    errors, time_range, timeline. Every row shows the looked-up correlation ID."""
    start, end = _time_bounds(rows)
    errors = _errors(rows)
    services = _services(rows)
    traces = _traces(rows)
    return {
        "correlation_id": rows.correlation_id,
        "summary": {
            "spans": len(rows.spans), "logs": len(rows.logs), "metrics": len(rows.exemplars),
            "errors": len(errors), "error_spans": sum(1 for e in errors if e["type"] == "span"),
            "error_logs": sum(1 for e in errors if e["type"] == "log"),
            "services": len(services), "traces": len(traces), "duration_ms": ms(end - start),
            "truncated": rows.truncated,
            # The same counts under the names the founding documents' UI reads.
            "total_spans": len(rows.spans), "total_logs": len(rows.logs), "total_metrics": len(rows.exemplars),
            "error_count": len(errors), "service_count": len(services),
        },
        "time_range": {"start": iso_ns(start), "end": iso_ns(end)},
        "traces": traces,
        "logs": [log_json(log, rows.correlation_id) for log in rows.logs],
        "metrics": [exemplar_json(ex, rows.correlation_id) for ex in rows.exemplars],
        "services": services,
        "errors": errors,
        "timeline": build_timeline(rows),
    }


def build_impact(rows: CorrelationRows) -> Row:
    """Services and operations touched, their error counts and p95 durations, and the
    services in the order they first failed."""
    ops: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for span in rows.spans:
        ops[(span["ServiceName"], span["SpanName"])].append(span)
    first_error: dict[str, Row] = {}
    for error in _errors(rows):  # time-ordered, so the first seen per service wins
        first_error.setdefault(error["service"], error)
    services: dict[str, Row] = {}
    for item in _services(rows):
        spans = [s for s in rows.spans if s["ServiceName"] == item["name"]]
        p95 = percentile((int(s["Duration"]) for s in spans), 0.95)
        services[item["name"]] = {
            "service": item["name"], "spans": item["spans"], "logs": item["logs"],
            "error_spans": sum(1 for s in spans if is_error_span(s)),
            "error_logs": sum(1 for log in rows.logs if log["ServiceName"] == item["name"] and is_error_log(log)),
            "p95_ms": None if p95 is None else ms(p95),
            "first_error_at": first_error[item["name"]]["timestamp"] if item["name"] in first_error else None,
            "operations": [],
        }
    for (service, operation), spans in sorted(ops.items()):
        p95 = percentile((int(s["Duration"]) for s in spans), 0.95)
        services[service]["operations"].append({
            "operation": operation, "spans": len(spans),
            "errors": sum(1 for s in spans if is_error_span(s)), "p95_ms": None if p95 is None else ms(p95),
        })
    first_failures: list[dict[str, Any]] = [
        {"service": name, "timestamp": e["timestamp"], "type": e["type"], "description": e["description"]}
        for name, e in first_error.items()
    ]
    return {
        "correlation_id": rows.correlation_id,
        "services": list(services.values()),
        "total_errors": sum(s["error_spans"] + s["error_logs"] for s in services.values()),
        "first_failures": first_failures,
    }
