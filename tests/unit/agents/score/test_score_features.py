"""Window aggregates: the latency sketch's accuracy, and merging the partial aggregate of a record."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from agents.score.features import WindowAggregate, bucket_value_ns, features_of, latency_buckets

MS = 1_000_000
GAMMA = 1.02 / 0.98


def sketch(durations_ms: list[float]) -> WindowAggregate:
    """The aggregate of spans with these durations, as a record's would be."""
    buckets = latency_buckets(np.array([int(d * MS) for d in durations_ms], np.uint64))
    return WindowAggregate(len(durations_ms), 0, Counter(buckets.tolist()))


@pytest.mark.parametrize("durations_ms, q, expected_ms", [
    ([10.0] * 100, 0.5, 10.0),
    (list(range(1, 101)), 0.5, 50.0),
    (list(range(1, 101)), 0.95, 95.0),
    ([1.0] * 95 + [1000.0] * 5, 0.95, 1.0),
    ([1.0] * 94 + [1000.0] * 6, 0.95, 1000.0),
    ([0.000001, 0.5, 3600_000.0], 1.0, 3600_000.0),
], ids=["constant", "median-of-1-100", "p95-of-1-100", "tail-below-p95", "tail-at-p95", "wide-range"])
def test_quantiles_are_within_two_percent(durations_ms: list[float], q: float, expected_ms: float) -> None:
    got = sketch(durations_ms).quantile_ms(q)
    assert got is not None and math.isclose(got, expected_ms, rel_tol=0.02)


@pytest.mark.parametrize("duration_ns", [
    2, 3, 1000, int(GAMMA ** 700), int(GAMMA ** 700) + 1, math.ceil(GAMMA ** 701) - 1, 2**53 + 1, 2**63, 2**64 - 1,
], ids=["2ns", "3ns", "1us", "boundary", "past-boundary", "before-boundary", "past-2^53", "2^63", "max"])
def test_every_duration_is_within_two_percent_of_its_bucket(duration_ns: int) -> None:
    bucket = int(latency_buckets(np.array([duration_ns], np.uint64))[0])
    assert bucket == math.ceil(math.log(duration_ns) / math.log(GAMMA))  # the sketch's definition
    assert math.isclose(bucket_value_ns(bucket), duration_ns, rel_tol=0.02)


def test_zero_durations_and_empty_windows() -> None:
    agg = WindowAggregate()
    assert agg.quantile_ms(0.5) is None and features_of(agg).error_rate is None
    assert latency_buckets(np.array([0, 1], np.uint64)).tolist() == [0, 0]
    assert sketch([0.0]).quantile_ms(0.5) == 0.0


def partial(spans: int, errors: int, slowest_ns: int, slow: str, failed: str) -> WindowAggregate:
    return WindowAggregate(spans, errors, {1: spans}, slowest_ns, (slow, f"t-{slow}"), (failed, f"t-{failed}"))


@pytest.mark.parametrize("first, later, slow, failed", [
    (partial(2, 0, 5, "a", ""), partial(1, 1, 9, "b", "b"), "b", "b"),
    (partial(2, 1, 9, "a", "a"), partial(1, 1, 9, "b", "b"), "a", "a"),
    (partial(2, 1, 9, "a", "a"), partial(1, 1, 5, "b", "b"), "a", "a"),
    (WindowAggregate(), partial(1, 0, 0, "b", ""), "b", ""),
], ids=["later-slower-and-first-failed", "ties-keep-the-earlier", "earlier-slower", "into-empty"])
def test_merging_adds_counts_and_keeps_the_first_exemplars(first: WindowAggregate, later: WindowAggregate,
                                                           slow: str, failed: str) -> None:
    spans, errors = first.spans + later.spans, first.errors + later.errors
    first.merge(later)
    f = features_of(first)
    assert (f.spans, f.errors, first.buckets) == (spans, errors, {1: spans})
    assert first.slow_exemplar[0] == slow and first.error_exemplar[0] == failed
