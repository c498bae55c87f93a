"""The correlation context, timeline and impact from plain rows, and the span tree."""
from __future__ import annotations

from typing import Any

import pytest

from api.presentation.context import (
    build_context,
    build_impact,
    build_timeline,
    percentile,
)
from api.presentation.rows import iso_ns, log_level
from api.queries.correlation import CorrelationRows
from api.routes.traces import span_tree

T0 = 1_768_471_200_000_000_000  # 2026-01-15T10:00:00Z
MS = 1_000_000


def span(span_id: str, parent: str, at_ms: int, dur_ms: int, service: str, name: str, status: str = "Ok",
         trace: str = "a" * 32) -> dict[str, Any]:
    return {"ts_ns": T0 + at_ms * MS, "TraceId": trace, "SpanId": span_id, "ParentSpanId": parent,
            "SpanName": name, "SpanKind": "Server", "ServiceName": service, "Duration": dur_ms * MS,
            "StatusCode": status, "StatusMessage": "", "SpanAttributes": {}, "ResourceAttributes": {},
            "event_ts_ns": [], "event_names": [], "event_attributes": [], "CorrelationId": "olly-x-00000000"}


def log(at_ms: int, service: str, number: int, body: str, text: str = "") -> dict[str, Any]:
    return {"ts_ns": T0 + at_ms * MS, "TraceId": "a" * 32, "SpanId": "s2", "SeverityText": text,
            "SeverityNumber": number, "ServiceName": service, "Body": body, "LogAttributes": {},
            "ResourceAttributes": {}, "CorrelationId": "olly-x-00000000"}


ROWS = CorrelationRows(
    correlation_id="order-1",
    trace_ids=["a" * 32],
    spans=[span("s1", "", 0, 100, "web", "GET /"), span("s2", "s1", 10, 50, "pay", "charge", "Error"),
           span("s3", "s2", 20, 10, "pay", "SELECT")],
    logs=[log(15, "pay", 17, "declined"), log(5, "web", 0, "hello", "warning")],
    exemplars=[{"ts_ns": T0 + 60 * MS, "MetricName": "latency", "MetricType": "histogram", "ServiceName": "pay",
                "Value": 50.0, "TraceId": "a" * 32, "SpanId": "s2", "CorrelationId": "",
                "FilteredAttributes": {}, "Attributes": {}}],
)


def test_the_context_counts_and_shows_only_the_looked_up_id() -> None:
    ctx = build_context(ROWS)
    assert ctx["summary"] == {"spans": 3, "logs": 2, "metrics": 1, "errors": 2, "error_spans": 1, "error_logs": 1,
                              "services": 2, "traces": 1, "duration_ms": 100.0, "truncated": False,
                              "total_spans": 3, "total_logs": 2, "total_metrics": 1, "error_count": 2,
                              "service_count": 2}
    assert ctx["time_range"] == {"start": "2026-01-15T10:00:00.000000000Z", "end": "2026-01-15T10:00:00.100000000Z"}
    rows = [*ctx["traces"][0]["spans"], *ctx["logs"], *ctx["metrics"]]
    assert {row["correlation_id"] for row in rows} == {"order-1"}
    assert [(s["name"], s["spans"], s["logs"], s["metrics"], s["errors"]) for s in ctx["services"]] == [
        ("web", 1, 1, 0, 0), ("pay", 2, 1, 1, 2)]


def test_the_timeline_is_in_time_order_with_levels() -> None:
    timeline = build_timeline(ROWS)
    assert [(i["type"], i["description"], i["level"], i["error"]) for i in timeline] == [
        ("span", "GET /", "INFO", False), ("log", "hello", "WARN", False), ("span", "charge", "ERROR", True),
        ("log", "declined", "ERROR", True), ("span", "SELECT", "INFO", False),
        ("metric", "latency = 50.0", "INFO", False)]


def test_impact_orders_services_by_their_first_failure() -> None:
    impact = build_impact(ROWS)
    assert impact["first_failures"] == [{"service": "pay", "timestamp": "2026-01-15T10:00:00.010000000Z",
                                         "type": "span", "description": "charge"}]
    pay = next(s for s in impact["services"] if s["service"] == "pay")
    assert (pay["error_spans"], pay["error_logs"], pay["p95_ms"]) == (1, 1, 50.0)
    assert [(o["operation"], o["errors"]) for o in pay["operations"]] == [("SELECT", 0), ("charge", 1)]
    assert impact["total_errors"] == 2


@pytest.mark.parametrize("values, q, expected", [
    ([], 0.95, None), ([5], 0.95, 5), (list(range(1, 101)), 0.95, 95), (list(range(1, 101)), 0.5, 50),
    ([3, 1, 2], 1.0, 3),
], ids=["empty", "one", "p95-of-100", "p50-of-100", "max"])
def test_nearest_rank_percentile(values: list[int], q: float, expected: int | None) -> None:
    assert percentile(values, q) == expected


def test_the_span_tree_is_depth_first_and_survives_bad_parents() -> None:
    spans = [span("r", "", 0, 1, "a", "root"), span("c1", "r", 1, 1, "a", "c1"), span("g", "c1", 2, 1, "a", "g"),
             span("c2", "r", 3, 1, "a", "c2"), span("orphan", "missing", 4, 1, "a", "o"),
             span("self", "self", 5, 1, "a", "s")]
    assert [(s["SpanId"], depth, kids) for s, depth, kids in span_tree(spans)] == [
        ("r", 0, 2), ("c1", 1, 1), ("g", 2, 0), ("c2", 1, 0), ("orphan", 0, 0), ("self", 0, 0)]
    deep = [span(f"s{i}", f"s{i - 1}" if i else "", i, 1, "a", "x") for i in range(2000)]
    assert span_tree(deep)[-1][1] == 1999


@pytest.mark.parametrize("number, text, level", [
    (0, "", "UNSET"), (1, "", "TRACE"), (9, "", "INFO"), (13, "", "WARN"), (17, "", "ERROR"), (24, "", "FATAL"),
    (0, "warning", "WARN"), (0, "Critical", "FATAL"), (9, "ERROR", "INFO"),
], ids=["unset", "trace", "info", "warn", "error", "fatal24", "text-warning", "text-critical", "number-wins"])
def test_log_levels(number: int, text: str, level: str) -> None:
    assert log_level(number, text) == level


def test_iso_timestamps_keep_nanoseconds() -> None:
    assert iso_ns(T0 + 123_456_789) == "2026-01-15T10:00:00.123456789Z"
    assert iso_ns(0) == "1970-01-01T00:00:00.000000000Z"
