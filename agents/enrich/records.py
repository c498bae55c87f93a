"""One raw record through enrichment: decode, then enrich with the states of its traces.

The live agents and `ollystack replay` both go through these two functions, so a replay
produces exactly the rows the live path would."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from agents.cardinality import CardinalityLimiter
from agents.enrich.config import EnrichConfig
from agents.enrich.logic import (
    EnrichResult,
    TraceKey,
    TraceState,
    enrich_logs,
    enrich_metrics,
    enrich_spans,
    trace_key,
)
from core.errors import DecodeError
from schemas.rows import decode_logs, decode_metrics, decode_spans, exemplar_rows

Signal = Literal["spans", "logs", "metrics"]
_MESSAGES: dict[str, Any] = {
    "spans": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest, "metrics": ExportMetricsServiceRequest,
}


@dataclass(frozen=True)
class Decoded:
    """A raw record's rows before enrichment, and the traces they belong to."""

    signal: Signal
    items: Any  # list[SpanRecord] | list[LogRecordRow] | (tables, exemplar rows)
    traces: frozenset[TraceKey]


def decode_record(signal: Signal, value: bytes | None) -> Decoded:
    """Parse one raw topic value (an OTLP export request, `otlp_proto`).

    Raises DecodeError naming the problem for empty or non-OTLP bytes."""
    message = _MESSAGES[signal]
    if not value:
        raise DecodeError("empty record value")
    try:
        request = message.FromString(value)
    except (ProtobufDecodeError, ValueError) as exc:
        raise DecodeError(f"not an OTLP {message.__name__}: {exc}") from None
    if signal == "spans":
        spans = decode_spans(request)
        return Decoded(signal, spans, frozenset(trace_key(s) for s in spans))
    if signal == "logs":
        logs = decode_logs(request)
        return Decoded(signal, logs, frozenset(trace_key(r) for r in logs))
    tables = decode_metrics(request)
    exemplars = exemplar_rows(tables)
    return Decoded(signal, (tables, exemplars), frozenset((e["Tenant"], e["TraceId"]) for e in exemplars))


def enrich_decoded(decoded: Decoded, known: Mapping[TraceKey, TraceState], config: EnrichConfig,
                   limiter: CardinalityLimiter, now_s: float) -> EnrichResult:
    """Enrich a decoded record; ``known`` holds the states of its traces seen before."""
    if decoded.signal == "spans":
        return enrich_spans(decoded.items, known, config)
    if decoded.signal == "logs":
        return enrich_logs(decoded.items, known, config)
    tables, exemplars = decoded.items
    return enrich_metrics(tables, exemplars, known, limiter, now_s)
