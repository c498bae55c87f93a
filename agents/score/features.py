"""Per-window span aggregates and the features scored from them (pure).

Latency is kept in a log-bucket sketch (relative error <= 2 %) instead of a list of
durations: memory per key and window stays bounded whatever the traffic, and two
sketches merge by adding counts, so the partial aggregate of a record's spans
(agents/score/spans.py) is merged into the window's, and partial aggregates of several
workers could be combined later without re-reading spans."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SERVICE_WIDE = ""  # the operation of a service-wide key
ERROR_STATUSES = frozenset({"Error", "STATUS_CODE_ERROR"})
_ALPHA = 0.02
_GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
NS_PER_MS = 1_000_000

Key = tuple[str, str, str]  # (tenant, service, operation); operation "" = the whole service
Exemplar = tuple[str, str]  # (correlation ID, trace ID)


def latency_buckets(durations_ns: np.ndarray) -> np.ndarray:
    """The sketch bucket of each duration (uint64 ns -> int64): ceil(ln(d) / ln(gamma)), and
    0 for durations up to 1 ns."""
    # The logarithm is Arrow's (the C library's, as math.log): at a bucket boundary a
    # last-bit difference would move a span to the next bucket.
    logs = pc.ln(pa.array(np.maximum(durations_ns, 1).astype(np.float64))).to_numpy()
    buckets: np.ndarray = np.ceil(logs / _LOG_GAMMA).astype(np.int64)
    return buckets


def bucket_value_ns(bucket: int) -> float:
    """The representative duration of a bucket (within 2 % of every duration in it)."""
    return 0.0 if bucket == 0 else 2 * _GAMMA ** bucket / (_GAMMA + 1)


class WindowAggregate:
    """Spans of one key in one window: counts, a latency sketch and exemplar traces."""

    __slots__ = ("spans", "errors", "buckets", "slowest_ns", "slow_exemplar", "error_exemplar")

    def __init__(self, spans: int = 0, errors: int = 0, buckets: Mapping[int, int] | None = None,
                 slowest_ns: int = -1, slow_exemplar: Exemplar = ("", ""),
                 error_exemplar: Exemplar = ("", "")) -> None:
        """An aggregate of ``spans`` spans (none by default). ``slow_exemplar`` is the first of
        the slowest spans (``slowest_ns``, -1 without spans), ``error_exemplar`` the first
        failed span with a correlation ID (("", "") without one)."""
        self.spans = spans
        self.errors = errors
        self.buckets: dict[int, int] = dict(buckets or {})
        self.slowest_ns = slowest_ns
        self.slow_exemplar: Exemplar = slow_exemplar
        self.error_exemplar: Exemplar = error_exemplar

    def merge(self, later: WindowAggregate) -> None:
        """Fold in the aggregate of spans of the same key and window that arrived after these:
        counts add up; the exemplars stay the first slowest span and the first failed span
        with a correlation ID, so ties go to the spans already here."""
        self.spans += later.spans
        self.errors += later.errors
        for bucket, count in later.buckets.items():
            self.buckets[bucket] = self.buckets.get(bucket, 0) + count
        if later.slowest_ns > self.slowest_ns:
            self.slowest_ns, self.slow_exemplar = later.slowest_ns, later.slow_exemplar
        if not self.error_exemplar[0]:
            self.error_exemplar = later.error_exemplar

    def quantile_ms(self, q: float) -> float | None:
        """Nearest-rank quantile of the durations in ms; None without spans."""
        if not self.spans:
            return None
        rank = max(1, math.ceil(q * self.spans))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return bucket_value_ns(bucket) / NS_PER_MS
        return None  # unreachable: the counts add up to spans


@dataclass(frozen=True)
class WindowFeatures:
    """What the detector sees of one key in one window."""

    spans: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.spans if self.spans else None


def features_of(agg: WindowAggregate) -> WindowFeatures:
    return WindowFeatures(agg.spans, agg.errors, agg.quantile_ms(0.5), agg.quantile_ms(0.95))
