"""Per-window span aggregates and the features scored from them (pure).

Latency is kept in a log-bucket sketch (relative error <= 2 %) instead of a list of
durations: memory per key and window stays bounded whatever the traffic, and two
sketches merge by adding counts, so partial aggregates of several workers could be
combined later without re-reading spans."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.tenancy import tenant_of

SERVICE_WIDE = ""  # the operation of a service-wide key
ERROR_STATUSES = frozenset({"Error", "STATUS_CODE_ERROR"})
_ALPHA = 0.02
_GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
NS_PER_MS = 1_000_000

Key = tuple[str, str, str]  # (tenant, service, operation); operation "" = the whole service
Exemplar = tuple[str, str]  # (correlation ID, trace ID)


def latency_bucket(duration_ns: int) -> int:
    """The sketch bucket of a duration; 0 holds durations under 1 ns."""
    return math.ceil(math.log(duration_ns) / _LOG_GAMMA) if duration_ns >= 1 else 0


def bucket_value_ns(bucket: int) -> float:
    """The representative duration of a bucket (within 2 % of every duration in it)."""
    return 0.0 if bucket == 0 else 2 * _GAMMA ** bucket / (_GAMMA + 1)


class WindowAggregate:
    """Spans of one key in one window: counts, a latency sketch and exemplar traces."""

    __slots__ = ("spans", "errors", "buckets", "slowest_ns", "slow_exemplar", "error_exemplar")

    def __init__(self) -> None:
        self.spans = 0
        self.errors = 0
        self.buckets: dict[int, int] = {}
        self.slowest_ns = -1
        self.slow_exemplar: Exemplar = ("", "")
        self.error_exemplar: Exemplar = ("", "")

    def add(self, bucket: int, duration_ns: int, error: bool, exemplar: Exemplar) -> None:
        self.spans += 1
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
        if duration_ns > self.slowest_ns:
            self.slowest_ns, self.slow_exemplar = duration_ns, exemplar
        if error:
            self.errors += 1
            if not self.error_exemplar[0]:
                self.error_exemplar = exemplar

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


@dataclass(frozen=True)
class SpanPoint:
    """The fields of a span row the score stage uses."""

    time_ns: int
    tenant: str
    service: str
    operation: str
    duration_ns: int
    error: bool
    exemplar: Exemplar
    span_id: str = ""
    parent_span_id: str = ""


def span_points(rows: Iterable[Mapping[str, Any]]) -> list[SpanPoint]:
    """Span rows of an enriched record (otel_traces columns) as SpanPoints.

    Rows without a usable Timestamp or ServiceName are skipped: they cannot be placed in
    a window or a key, and the sink keeps them anyway."""
    points = []
    for row in rows:
        ts = row.get("Timestamp")
        service = row.get("ServiceName")
        if not isinstance(ts, int) or ts <= 0 or not isinstance(service, str) or not service:
            continue
        resource = row.get("ResourceAttributes") or {}
        duration = row.get("Duration")
        points.append(SpanPoint(
            ts, tenant_of(resource) if isinstance(resource, dict) else "", service,
            str(row.get("SpanName") or ""), duration if isinstance(duration, int) and duration > 0 else 0,
            row.get("StatusCode") in ERROR_STATUSES,
            (str(row.get("CorrelationId") or ""), str(row.get("TraceId") or "")),
            str(row.get("SpanId") or ""), str(row.get("ParentSpanId") or ""),
        ))
    return points
