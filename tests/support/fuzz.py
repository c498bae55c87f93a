"""Seeded hostile OTLP requests: valid requests with one field made hostile, or their bytes
damaged. Every request comes out the same for the same seed."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

LATE = 2**64 - 1
T0 = 1_763_856_000_000_000_000
HOSTILE_TEXT = ['"' * 300_000, "\x01" * 200_000, "<script>alert(1)</script>", "' OR 1=1 --", "\u202e\u200b\ufeff",
                "a" * 20_000, "../../etc/passwd", "olly-zzz-00000000", "😀" * 5000, "\\" * 50_000]
Message = ExportTraceServiceRequest | ExportLogsServiceRequest | ExportMetricsServiceRequest


@dataclass(frozen=True)
class Case:
    """One request to send: its signal, body bytes and the mutation it carries."""

    signal: str
    body: bytes
    mutation: str
    message: Message | None  # None when the bytes were damaged and may not parse


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _text(rng: random.Random) -> AnyValue:
    return AnyValue(string_value=rng.choice(HOSTILE_TEXT))


def _nested(depth: int) -> AnyValue:
    value = AnyValue(string_value="leaf")
    for _ in range(depth):
        outer = AnyValue()
        outer.kvlist_value.values.add(key="k", value=value)
        value = outer
    return value


def _service(rng: random.Random, resource_envelope: Any) -> Any:
    """``resource_envelope`` (ResourceSpans, ResourceLogs or ResourceMetrics) of one of five services."""
    resource_envelope.resource.attributes.append(_kv("service.name", AnyValue(string_value=f"svc-{rng.randrange(5)}")))
    return resource_envelope


def _traces(rng: random.Random, n: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    spans = _service(rng, req.resource_spans.add()).scope_spans.add().spans
    trace = rng.randbytes(16)
    for i in range(n):
        start = T0 + rng.randrange(10**12)
        spans.add(trace_id=trace, span_id=rng.randbytes(8), name=f"op-{i}", start_time_unix_nano=start,
                  end_time_unix_nano=start + rng.randrange(10**9), kind=1 + rng.randrange(5))
    return req


def _logs(rng: random.Random, n: int) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    records = _service(rng, req.resource_logs.add()).scope_logs.add().log_records
    for _ in range(n):
        records.add(time_unix_nano=T0 + rng.randrange(10**12), trace_id=rng.randbytes(16), span_id=rng.randbytes(8),
                    severity_number=1 + rng.randrange(24), body=AnyValue(string_value="ok"))
    return req


def _metrics(rng: random.Random, n: int) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    metrics = _service(rng, req.resource_metrics.add()).scope_metrics.add().metrics
    for i in range(n):
        metric = metrics.add(name=f"m.{rng.randrange(10**6)}.{i}")
        if rng.random() < 0.5:
            point = metric.gauge.data_points.add(time_unix_nano=T0 + rng.randrange(10**12), as_double=rng.random())
        else:
            point = metric.histogram.data_points.add(time_unix_nano=T0 + rng.randrange(10**12), count=3, sum=1.5,
                                                     bucket_counts=[1, 2], explicit_bounds=[1.0])
        point.exemplars.add(time_unix_nano=T0, as_double=1.0, trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
    return req


def _mutate_span(rng: random.Random, req: ExportTraceServiceRequest) -> str:
    span = rng.choice(req.resource_spans[0].scope_spans[0].spans)
    kind = rng.randrange(9)
    if kind == 0:
        span.attributes.append(_kv("payload", _text(rng)))
        return "huge-or-hostile-attribute"
    if kind == 1:
        setattr(span, rng.choice(["start_time_unix_nano", "end_time_unix_nano"]), LATE)
        return "time-past-2262"
    if kind == 2:
        span.events.add(time_unix_nano=LATE, name="late")
        return "event-past-2262"
    if kind == 3:
        span.span_id = rng.choice([b"", b"\0" * 8, rng.randbytes(5)])
        return "bad-span-id"
    if kind == 4:
        span.attributes.append(_kv("correlation_id", _text(rng)))
        return "hostile-correlation-id"
    if kind == 5:
        span.attributes.append(_kv("deep", _nested(rng.randrange(10, 28))))
        return "deep-kvlist"
    if kind == 6:
        span.attributes.extend(_kv(f"k{i}", AnyValue(int_value=i)) for i in range(rng.randrange(1000, 5000)))
        return "many-attributes"
    if kind == 7:
        span.kind, span.status.code = 99, 42  # enums out of range
        return "enum-out-of-range"
    span.end_time_unix_nano = 1  # ends before it starts
    return "end-before-start"


def _mutate_log(rng: random.Random, req: ExportLogsServiceRequest) -> str:
    record = rng.choice(req.resource_logs[0].scope_logs[0].log_records)
    kind = rng.randrange(5)
    if kind == 0:
        record.body.CopyFrom(_text(rng))
        return "huge-or-hostile-body"
    if kind == 1:
        setattr(record, rng.choice(["time_unix_nano", "observed_time_unix_nano"]), LATE)
        return "time-past-2262"
    if kind == 2:
        record.trace_id = rng.randbytes(7)
        return "bad-trace-id"
    if kind == 3:
        record.body.CopyFrom(_nested(rng.randrange(10, 28)))
        return "deep-body"
    record.severity_number = 9999  # out of range
    return "severity-out-of-range"


def _mutate_metric(rng: random.Random, req: ExportMetricsServiceRequest) -> str:
    metric = rng.choice(req.resource_metrics[0].scope_metrics[0].metrics)
    points = getattr(metric, metric.WhichOneof("data")).data_points
    point = points[0]
    kind = rng.randrange(5)
    if kind == 0:
        point.time_unix_nano = LATE
        return "time-past-2262"
    if kind == 1:
        point.exemplars[0].time_unix_nano = LATE
        return "exemplar-past-2262"
    if kind == 2:
        point.attributes.append(_kv("huge", _text(rng)))
        return "huge-or-hostile-attribute"
    if kind == 3:
        if metric.HasField("gauge"):
            point.as_double = float(rng.choice(["nan", "inf", "-inf"]))
        else:
            point.bucket_counts.extend([7] * 50)  # counts that do not match the bounds
        return "odd-values"
    point.exemplars[0].span_id = rng.randbytes(3)
    return "bad-exemplar-id"


_BUILDERS: dict[str, tuple[Callable[[random.Random, int], Any], Callable[[random.Random, Any], str], type[Any]]] = {
    "traces": (_traces, _mutate_span, ExportTraceServiceRequest),
    "logs": (_logs, _mutate_log, ExportLogsServiceRequest),
    "metrics": (_metrics, _mutate_metric, ExportMetricsServiceRequest),
}


def case(rng: random.Random) -> Case:
    """One hostile request; about one in six has its bytes damaged instead."""
    signal = rng.choices(["traces", "logs", "metrics"], weights=[3, 2, 1])[0]
    build, mutate, request_type = _BUILDERS[signal]
    message = build(rng, 1 + rng.randrange(6))
    mutation = mutate(rng, message)
    body = message.SerializeToString()
    if rng.random() < 1 / 6:
        damaged = bytearray(body)
        for _ in range(1 + rng.randrange(4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        body = bytes(damaged[: len(damaged) - rng.randrange(3)])
        try:
            parsed: Message | None = request_type.FromString(body)
        except (ProtobufDecodeError, ValueError, RecursionError):
            parsed = None
        return Case(signal, body, f"{mutation}+damaged-bytes", parsed)
    return Case(signal, body, mutation, message)
