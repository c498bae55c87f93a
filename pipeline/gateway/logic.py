"""Pure splitting of OTLP export requests into Kafka records: by trace ID, or by resource."""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from core.tenancy import TENANT_ATTRIBUTE
from core.types import Signal
from schemas.otlp_wire import varint

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
# Sentinel group key: logs without a trace ID share one record with no key.
_NO_TRACE = b""
# Every time OllyStack stores is a DateTime64(9) column, which ends at 2262-04-11T23:47:16Z
# (2**63 - 1 ns). A later time cannot be stored as sent, so the item is refused (OTLP
# partial success) instead of being accepted and failing in the warehouse.
MAX_TIME_NS = 2**63 - 1
_TOO_LATE = "a time past 2262-04-11T23:47:16Z (DateTime64(9) ends there)"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One record for a raw topic: an otlp_proto export request and its key."""

    key: bytes | None
    value: bytes

    @property
    def size_bytes(self) -> int:
        return len(self.value) + len(self.key or b"")


@dataclass(frozen=True)
class SplitResult:
    """Records to produce, how many items (spans, log records, points) they hold, and
    how many were rejected and why ('' when none): the OTLP partial success."""

    records: list[KafkaRecord]
    accepted_items: int
    rejected_items: int
    error_message: str


@dataclass(frozen=True)
class _Shape:
    request_type: type[Message]
    resources: str
    scopes: str
    leaves: str
    item_name: str


SHAPES: dict[Signal, _Shape] = {
    "traces": _Shape(ExportTraceServiceRequest, "resource_spans", "scope_spans", "spans", "spans"),
    "logs": _Shape(ExportLogsServiceRequest, "resource_logs", "scope_logs", "log_records",
                   "log records"),
    "metrics": _Shape(ExportMetricsServiceRequest, "resource_metrics", "scope_metrics", "metrics",
                      "data points"),
}

# (resource index, scope index, leaf message) in request order.
_Leaf = tuple[int, int, Any]
# (resource index, scope index, encoded leaf field, items it holds) in request order.
_Item = tuple[int, int, bytes, int]


def metric_points(metric: Any) -> int:
    """The number of data points of one Metric, whatever its type."""
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def _weight(signal: Signal, leaf: Any) -> int:
    return metric_points(leaf) if signal == "metrics" else 1


def _leaves(shape: _Shape, request: Any) -> Iterator[_Leaf]:
    for ri, res in enumerate(getattr(request, shape.resources)):
        for si, scope in enumerate(getattr(res, shape.scopes)):
            for leaf in getattr(scope, shape.leaves):
                yield ri, si, leaf


def count_items(signal: Signal, request: Any) -> int:
    """Spans, log records or metric data points in ``request``."""
    return sum(_weight(signal, leaf) for _, _, leaf in _leaves(SHAPES[signal], request))


def apply_tenant(signal: Signal, request: Any, tenant: str) -> None:
    """Set resource attribute tenant.id on every resource of ``request`` (in place).

    A tenant.id the client sent is replaced, so a client cannot write as another tenant."""
    for res in getattr(request, SHAPES[signal].resources):
        attrs = res.resource.attributes
        keep = [kv for kv in attrs if kv.key != TENANT_ATTRIBUTE]
        if len(keep) != len(attrs):
            del attrs[:]
            attrs.extend(keep)
        attrs.add(key=TENANT_ATTRIBUTE, value=AnyValue(string_value=tenant))


def resource_key(resource: Any) -> bytes:
    """A 16-byte hash of a resource's attributes, independent of their order (like the
    Collector's pdatautil.MapHash, though not the same bytes)."""
    digest = hashlib.blake2b(digest_size=16)
    for kv in sorted(resource.attributes, key=lambda kv: kv.key):
        digest.update(kv.SerializeToString(deterministic=True))
        digest.update(b"\x00")
    return digest.digest()


def _span_key(span: Any) -> bytes | str:
    if len(span.trace_id) != 16 or span.trace_id == _ZERO_TRACE_ID:
        return "a trace_id that is not 16 non-zero bytes"
    if len(span.span_id) != 8 or span.span_id == _ZERO_SPAN_ID:
        return "a span_id that is not 8 non-zero bytes"
    if max(span.start_time_unix_nano, span.end_time_unix_nano) > MAX_TIME_NS or (
            span.events and max(e.time_unix_nano for e in span.events) > MAX_TIME_NS):
        return _TOO_LATE
    trace_id: bytes = span.trace_id
    return trace_id


def _log_key(log: Any) -> bytes | str:
    if len(log.trace_id) not in (0, 16):
        return "a trace_id that is neither empty nor 16 bytes"
    if len(log.span_id) not in (0, 8):
        return "a span_id that is neither empty nor 8 bytes"
    if max(log.time_unix_nano, log.observed_time_unix_nano) > MAX_TIME_NS:
        return _TOO_LATE
    # An all-zero trace ID is the invalid ID of the spec: treated as no trace ID.
    return _NO_TRACE if log.trace_id == _ZERO_TRACE_ID else log.trace_id


def _late_point(point: Any) -> bool:
    if max(point.start_time_unix_nano, point.time_unix_nano) > MAX_TIME_NS:
        return True
    exemplars = getattr(point, "exemplars", ())  # summaries carry none
    return bool(exemplars) and max(e.time_unix_nano for e in exemplars) > MAX_TIME_NS


def _storable_points(metric: Any) -> tuple[Any, int]:
    """``metric``, or a copy without its points whose times cannot be stored, and how many
    points that left out."""
    kind = metric.WhichOneof("data")
    late = [i for i, point in enumerate(getattr(metric, kind).data_points) if _late_point(point)]
    if not late:
        return metric, 0
    kept = type(metric)()
    kept.CopyFrom(metric)
    points = getattr(kept, kind).data_points
    for index in reversed(late):
        del points[index]
    return kept, len(late)


# Records are assembled from encoded pieces instead of copied messages: copying each span
# into a new message cost twice as much as serializing it (upb), and piece sizes make the
# record size known without encoding twice. Every Resource*/Scope* envelope of the three
# signals numbers its fields alike: 1 resource or scope, 2 the children, 3 schema_url.
_TAG_1, _TAG_2, _TAG_3 = b"\x0a", b"\x12", b"\x1a"  # length-delimited fields 1, 2, 3


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def _envelope(message: Any, inner: str) -> tuple[bytes, bytes]:
    """The encoded fields of an envelope around its children: (field 1, field 3)."""
    head = _field(_TAG_1, getattr(message, inner).SerializeToString()) if message.HasField(inner) else b""
    tail = _field(_TAG_3, message.schema_url.encode()) if message.schema_url else b""
    return head, tail


@dataclass(frozen=True)
class _Envelopes:
    resources: list[tuple[bytes, bytes]]
    scopes: list[list[tuple[bytes, bytes]]]

    @classmethod
    def of(cls, shape: _Shape, request: Any) -> _Envelopes:
        resources, scopes = [], []
        for res in getattr(request, shape.resources):
            resources.append(_envelope(res, "resource"))
            scopes.append([_envelope(scope, "scope") for scope in getattr(res, shape.scopes)])
        return cls(resources, scopes)


def _build(envelopes: _Envelopes, items: list[_Item]) -> bytes:
    """An export request holding ``items`` under copies of their envelopes."""
    out = []
    for ri, in_resource in groupby(items, key=itemgetter(0)):
        scopes = []
        for si, in_scope in groupby(in_resource, key=itemgetter(1)):
            head, tail = envelopes.scopes[ri][si]
            scopes.append(_field(_TAG_2, head + b"".join(item[2] for item in in_scope) + tail))
        head, tail = envelopes.resources[ri]
        out.append(_field(_TAG_1, head + b"".join(scopes) + tail))
    return b"".join(out)


def _encode(envelopes: _Envelopes, items: list[_Item], max_record_bytes: int) -> tuple[list[bytes], list[_Item]]:
    """Values of at most ``max_record_bytes`` holding ``items``, halving a group that is
    too large; an item too large on its own is returned as rejected."""
    value = _build(envelopes, items)
    if len(value) <= max_record_bytes:
        return [value], []
    if len(items) == 1:
        return [], items
    half = len(items) // 2
    first, rejected_a = _encode(envelopes, items[:half], max_record_bytes)
    second, rejected_b = _encode(envelopes, items[half:], max_record_bytes)
    return first + second, rejected_a + rejected_b


def _group(signal: Signal, request: Any) -> tuple[dict[Any, list[_Item]], Counter[str]]:
    shape = SHAPES[signal]
    groups: dict[Any, list[_Item]] = {}
    rejected: Counter[str] = Counter()
    key_of: Callable[[Any], bytes | str] = _span_key if signal == "traces" else _log_key
    for ri, si, leaf in _leaves(shape, request):
        if signal == "metrics":
            if not metric_points(leaf):  # a metric without points is an empty envelope: dropped
                continue
            leaf, late = _storable_points(leaf)
            if late:
                rejected[_TOO_LATE] += late
            points = metric_points(leaf)
            if points:
                groups.setdefault(ri, []).append((ri, si, _field(_TAG_2, leaf.SerializeToString()), points))
            continue
        key = key_of(leaf)
        if isinstance(key, str):
            rejected[key] += 1
        else:
            groups.setdefault(key, []).append((ri, si, _field(_TAG_2, leaf.SerializeToString()), 1))
    return groups, rejected


def _record_key(signal: Signal, request: Any, group: Any) -> bytes | None:
    if signal == "metrics":
        return resource_key(getattr(request, SHAPES[signal].resources)[group].resource)
    return group.hex().encode() if group else None


def split_request(signal: Signal, request: Any, max_record_bytes: int) -> SplitResult:
    """Split an export request into otlp_proto records for the raw topic of ``signal``.

    Spans and log records: one record per trace ID, keyed by the lowercase hex trace ID,
    holding only that trace's items under their resource and scope envelopes; log records
    without a trace ID share one record with no key. Metrics: one record per
    ResourceMetrics, keyed by ``resource_key``. Envelopes without items are dropped
    quietly; items with invalid IDs, or too large for one record, are rejected."""
    shape = SHAPES[signal]
    groups, reasons = _group(signal, request)
    envelopes = _Envelopes.of(shape, request) if groups else _Envelopes([], [])
    records: list[KafkaRecord] = []
    accepted = 0
    rejected = sum(reasons.values())
    for group, items in groups.items():
        values, too_large = _encode(envelopes, items, max_record_bytes)
        key = _record_key(signal, request, group)
        records.extend(KafkaRecord(key, value) for value in values)
        weight = sum(item[3] for item in too_large)
        if weight:
            reasons[f"more than {max_record_bytes} bytes on its own"] += weight
            rejected += weight
        accepted += sum(item[3] for item in items) - weight
    return SplitResult(records, accepted, rejected, _describe(shape, reasons, rejected))


def _describe(shape: _Shape, reasons: Counter[str], rejected: int) -> str:
    if not rejected:
        return ""
    parts = "; ".join(f"{n} with {why}" if why.startswith("a ") else f"{n} {why}"
                      for why, n in sorted(reasons.items()))
    return f"{rejected} {shape.item_name} rejected: {parts}"
