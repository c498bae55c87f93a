"""Window aggregates: the latency sketch's accuracy, counts, exemplars, and reading span rows."""
from __future__ import annotations

import math
from typing import Any

import pytest

from agents.score.features import (
    WindowAggregate,
    features_of,
    latency_bucket,
    span_points,
)

MS = 1_000_000


@pytest.mark.parametrize("durations_ms, q, expected_ms", [
    ([10.0] * 100, 0.5, 10.0),
    (list(range(1, 101)), 0.5, 50.0),
    (list(range(1, 101)), 0.95, 95.0),
    ([1.0] * 95 + [1000.0] * 5, 0.95, 1.0),
    ([1.0] * 94 + [1000.0] * 6, 0.95, 1000.0),
    ([0.000001, 0.5, 3600_000.0], 1.0, 3600_000.0),
], ids=["constant", "median-of-1-100", "p95-of-1-100", "tail-below-p95", "tail-at-p95", "wide-range"])
def test_quantiles_are_within_two_percent(durations_ms: list[float], q: float, expected_ms: float) -> None:
    agg = WindowAggregate()
    for d in durations_ms:
        ns = int(d * MS)
        agg.add(latency_bucket(ns), ns, False, ("", ""))
    got = agg.quantile_ms(q)
    assert got is not None and math.isclose(got, expected_ms, rel_tol=0.02)


def test_zero_durations_and_empty_windows() -> None:
    agg = WindowAggregate()
    assert agg.quantile_ms(0.5) is None and features_of(agg).error_rate is None
    agg.add(latency_bucket(0), 0, False, ("", ""))
    assert agg.quantile_ms(0.5) == 0.0


def test_counts_and_exemplars_point_at_offending_spans() -> None:
    agg = WindowAggregate()
    for i, (ms, error) in enumerate([(5, False), (900, False), (7, True), (8, True)]):
        agg.add(latency_bucket(ms * MS), ms * MS, error, (f"cid-{i}", f"trace-{i}"))
    f = features_of(agg)
    assert (f.spans, f.errors, f.error_rate) == (4, 2, 0.5)
    assert agg.slow_exemplar == ("cid-1", "trace-1")
    assert agg.error_exemplar == ("cid-2", "trace-2")


def test_span_rows_become_points_and_unplaceable_rows_are_skipped() -> None:
    rows: list[dict[str, Any]] = [
        {"Timestamp": 10, "ServiceName": "checkout", "SpanName": "POST /pay", "Duration": 5 * MS,
         "StatusCode": "Error", "CorrelationId": "req-1", "TraceId": "ab" * 16,
         "ResourceAttributes": {"tenant.id": "acme"}},
        {"Timestamp": 11, "ServiceName": "checkout", "SpanName": "GET /", "Duration": 1, "StatusCode": "Ok"},
        {"Timestamp": "later", "ServiceName": "checkout"},
        {"Timestamp": 12, "ServiceName": ""},
        {"Timestamp": 13, "ServiceName": "x", "Duration": -4, "StatusCode": "STATUS_CODE_ERROR"},
    ]
    points = span_points(rows)
    assert [(p.service, p.tenant, p.error, p.duration_ns) for p in points] == [
        ("checkout", "acme", True, 5 * MS), ("checkout", "", False, 1), ("x", "", True, 0)]
    assert points[0].exemplar == ("req-1", "ab" * 16)
