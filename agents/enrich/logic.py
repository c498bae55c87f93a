"""Pure enrichment of one raw record: decode, correlation IDs per trace, semantic
conventions, cardinality limits.

The live agents and `ollystack replay` both go through ``decode_record`` and
``enrich_decoded``, so a replay produces exactly the rows the live path would."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

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
from agents.correlation import (
    REJECTED_REASON_ATTRIBUTE,
    REJECTED_VALUE_ATTRIBUTE,
    SOURCE_PRIORITY,
    Candidate,
    CorrelationConfig,
    check_candidate,
    find_correlation_id,
    generated_id,
)
from agents.semconv import normalize_attributes, normalize_severity
from core.errors import DecodeError
from core.tenancy import tenant_of
from core.types import Row, Signal
from schemas.log_rows import LogRecordRow
from schemas.rows import decode_logs, decode_metrics, decode_spans, exemplar_rows
from schemas.span_rows import SpanRecord
from schemas.tables import EXEMPLARS_TABLE, LOGS_TABLE, TRACE_LINKS_TABLE, TRACES_TABLE

# A trace is a tenant's own: two tenants sending one trace ID (a call across tenants carries
# its traceparent) each keep their own correlation state and links.
TraceKey = tuple[str, str]  # (tenant, trace ID)
Tables = dict[str, list[Row]]
_REQUESTS: dict[Signal, type[ExportTraceServiceRequest | ExportLogsServiceRequest | ExportMetricsServiceRequest]] = {
    "traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest, "metrics": ExportMetricsServiceRequest}
R = TypeVar("R", SpanRecord, LogRecordRow)


@dataclass(frozen=True)
class TraceState:
    """What the worker remembers of a trace: its ID, where the ID came from, and when the
    trace was first seen (the anchor of a generated ID)."""

    correlation_id: str
    source: str
    priority: int
    first_seen_ns: int


@dataclass(frozen=True)
class Decoded:
    """A raw record's rows before enrichment, and the traces they belong to."""

    signal: Signal
    traces: frozenset[TraceKey]
    spans: Sequence[SpanRecord] = ()
    logs: Sequence[LogRecordRow] = ()
    metrics: Mapping[str, list[Row]] = field(default_factory=dict)
    exemplars: Sequence[Row] = ()


@dataclass
class EnrichResult:
    """Rows per table (trace links included), the trace states that changed, and counts."""

    tables: Tables = field(default_factory=dict)
    trace_updates: dict[TraceKey, TraceState] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, table: str, rows: Iterable[Row]) -> None:
        self.tables.setdefault(table, []).extend(rows)


def decode_record(signal: Signal, value: bytes | None) -> Decoded:
    """Parse one raw topic value (an OTLP export request, `otlp_proto`).

    Raises DecodeError naming the problem for empty or non-OTLP bytes."""
    message = _REQUESTS[signal]
    if not value:
        raise DecodeError("empty record value")
    try:
        request = message.FromString(value)
    except (ProtobufDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"not an OTLP {message.__name__}: {exc}") from None
    if isinstance(request, ExportTraceServiceRequest):
        spans = decode_spans(request)
        return Decoded(signal, frozenset(map(trace_key, spans)), spans=spans)
    if isinstance(request, ExportLogsServiceRequest):
        logs = decode_logs(request)
        return Decoded(signal, frozenset(map(trace_key, logs)), logs=logs)
    tables = decode_metrics(request)
    exemplars = exemplar_rows(tables)
    return Decoded(signal, frozenset((e["Tenant"], e["TraceId"]) for e in exemplars), metrics=tables,
                   exemplars=exemplars)


def enrich_decoded(decoded: Decoded, known: Mapping[TraceKey, TraceState], correlation: CorrelationConfig,
                   limiter: CardinalityLimiter, now_s: float) -> EnrichResult:
    """Enrich a decoded record; ``known`` holds the states of its traces seen before."""
    if decoded.signal == "traces":
        return enrich_spans(decoded.spans, known, correlation)
    if decoded.signal == "logs":
        return enrich_logs(decoded.logs, known, correlation)
    return enrich_metrics(decoded.metrics, decoded.exemplars, known, limiter, now_s)


def trace_key(item: SpanRecord | LogRecordRow) -> TraceKey:
    """The (tenant, trace ID) of a span or log record."""
    return tenant_of(item.resource_attrs), item.row["TraceId"]


def _link(key: TraceKey, state: TraceState, last_ns: int) -> Row:
    return {"Tenant": key[0], "TraceId": key[1], "CorrelationId": state.correlation_id, "Source": state.source,
            "Priority": state.priority, "FirstSeen": state.first_seen_ns, "LastSeen": last_ns}


def _own_candidate(resource: Mapping[str, object], attrs: Mapping[str, object], body: object,
                   config: CorrelationConfig, row_attrs: dict[str, str], counts: Counter[str]) -> Candidate | None:
    """The record's own valid candidate; an invalid one is recorded on the row and dropped."""
    found = find_correlation_id(resource, attrs, body, None, config)
    if found is None:
        return None
    rejection = check_candidate(found, config)
    if rejection is None:
        return found
    row_attrs[REJECTED_REASON_ATTRIBUTE] = rejection.reason
    row_attrs[REJECTED_VALUE_ATTRIBUTE] = rejection.value
    counts["correlation_rejected"] += 1
    counts[f"correlation_rejected:{rejection.reason}"] += 1
    return None


def _settle_trace(key: TraceKey, found: Sequence[tuple[Candidate, int]], times_ns: Sequence[int],
                  known: TraceState | None, result: EnrichResult) -> TraceState:
    """The trace's ID after this batch: the best source wins; equal sources keep the first."""
    first_ns, last_ns = min(times_ns), max(times_ns)
    best = min(found, key=lambda cf: (SOURCE_PRIORITY[cf[0].source], cf[1]), default=None)
    state = known
    if best is not None and (known is None or SOURCE_PRIORITY[best[0].source] < known.priority):
        candidate = best[0]
        state = TraceState(candidate.value, candidate.source, SOURCE_PRIORITY[candidate.source],
                           known.first_seen_ns if known else first_ns)
        result.counts["correlation_found"] += 1
    elif state is None:
        # Derived from the trace alone (its ID and the event time of its first record),
        # so a replay of the same records generates the same ID.
        state = TraceState(generated_id(key[1], first_ns), "generated", SOURCE_PRIORITY["generated"], first_ns)
        result.counts["correlation_generated"] += 1
    if state is not known:
        result.trace_updates[key] = state
        result.add(TRACE_LINKS_TABLE, [_link(key, state, last_ns)])
    return state


def _assign(records: Sequence[R], candidates: Sequence[Candidate | None], known: Mapping[TraceKey, TraceState],
            result: EnrichResult, identity: Callable[[R], str]) -> None:
    """Give every record its ID, trace by trace: the trace's, or (no trace) its own."""
    groups: dict[TraceKey, list[tuple[R, Candidate | None]]] = {}
    for record, candidate in zip(records, candidates, strict=True):
        groups.setdefault(trace_key(record), []).append((record, candidate))
    for key, group in groups.items():
        if key[1]:
            found = [(c, r.row["Timestamp"]) for r, c in group if c is not None]
            state = _settle_trace(key, found, [r.row["Timestamp"] for r, _ in group], known.get(key), result)
            for record, _ in group:
                record.row["CorrelationId"] = state.correlation_id
            continue
        for record, candidate in group:
            if candidate is None:
                result.counts["correlation_generated"] += 1
            record.row["CorrelationId"] = candidate.value if candidate else generated_id(
                identity(record), record.row["Timestamp"])


def enrich_spans(records: Sequence[SpanRecord], known: Mapping[TraceKey, TraceState],
                 config: CorrelationConfig) -> EnrichResult:
    """Set CorrelationId on every span, trace by trace; rename deprecated attributes.

    ``known`` holds the states of traces seen before (agents/enrich/state.py). Nothing
    is dropped: an invalid ID is replaced and its reason kept in the span's attributes."""
    result = EnrichResult()
    candidates = []
    for record in records:
        row = record.row
        attrs, renamed = normalize_attributes(row["SpanAttributes"])
        row["SpanAttributes"] = {k: str(v) for k, v in attrs.items()}
        result.counts["semconv_rewritten"] += len(renamed)
        candidates.append(_own_candidate(record.resource_attrs, record.attrs, None, config,
                                         row["SpanAttributes"], result.counts))
    _assign(records, candidates, known, result, lambda r: str(r.row["SpanId"]))
    result.add(TRACES_TABLE, (r.row for r in records))
    result.counts["spans"] += len(records)
    return result


def enrich_logs(records: Sequence[LogRecordRow], known: Mapping[TraceKey, TraceState],
                config: CorrelationConfig) -> EnrichResult:
    """Set CorrelationId on every log record and normalise severity.

    Records with a trace follow the trace's ID (and can set it, e.g. from a JSON body);
    records without one keep their own ID or get one derived from their content."""
    result = EnrichResult()
    candidates = []
    for record in records:
        row = record.row
        row["SeverityNumber"], row["SeverityText"] = normalize_severity(row["SeverityNumber"], row["SeverityText"])
        candidates.append(_own_candidate(record.resource_attrs, record.attrs, record.body, config,
                                         row["LogAttributes"], result.counts))
    _assign(records, candidates, known, result,
            lambda r: f"{r.row['Timestamp']}:{r.row['ServiceName']}:{r.row['Body']}")
    result.add(LOGS_TABLE, (r.row for r in records))
    result.counts["logs"] += len(records)
    return result


def enrich_metrics(tables: Mapping[str, list[Row]], exemplars: Sequence[Row], known: Mapping[TraceKey, TraceState],
                   limiter: CardinalityLimiter, now_s: float) -> EnrichResult:
    """Limit the cardinality of point attributes and give exemplars their trace's ID.

    Point attributes past the limit become the overflow marker (they are the series key);
    an exemplar whose trace is not known yet keeps '' and is resolved at query time."""
    result = EnrichResult()
    before = sum(limiter.overflow_counts().values())
    for table, rows in tables.items():
        for row in rows:
            row["Attributes"] = limiter.limit_attributes(row["Attributes"], now_s)
        result.add(table, rows)
        result.counts["points"] += len(rows)
    result.counts["cardinality_overflow"] += sum(limiter.overflow_counts().values()) - before
    for exemplar in exemplars:
        state = known.get((exemplar["Tenant"], exemplar["TraceId"])) if exemplar["TraceId"] else None
        exemplar["CorrelationId"] = state.correlation_id if state else ""
    result.add(EXEMPLARS_TABLE, exemplars)
    return result
