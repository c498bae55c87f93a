"""Pure enrichment: correlation IDs per trace, semantic conventions, cardinality limits."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from agents.cardinality import CardinalityLimiter
from agents.correlation import Candidate, find_correlation_id, generate_correlation_id
from agents.enrich.config import EnrichConfig
from agents.semconv import normalize_attributes, normalize_severity
from agents.validation import validate_correlation_id
from core.tenancy import tenant_of
from schemas.log_rows import LogRecordRow
from schemas.span_rows import SpanRecord

# Lower wins. A trace's ID only ever moves to a better source, so children stored with a
# generated ID are re-linked (at query time) when the root brings the caller's ID.
PRIORITY = {"resource": 0, "attribute": 1, "header": 2, "baggage": 3, "body": 4, "trace": 5, "generated": 6}
REJECTED_REASON = "ollystack.correlation_id.rejected_reason"
REJECTED_VALUE = "ollystack.correlation_id.rejected_value"
_MAX_REJECTED_CHARS = 256
# A trace is a tenant's own: two tenants sending one trace ID (a call across tenants carries
# its traceparent) each keep their own correlation state and links.
TraceKey = tuple[str, str]  # (tenant, trace ID)


@dataclass(frozen=True)
class TraceState:
    """What the worker remembers of a trace (a Faust table value)."""

    correlation_id: str
    source: str
    priority: int
    first_seen_ns: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.correlation_id, "source": self.source, "priority": self.priority,
                "first_seen_ns": self.first_seen_ns}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TraceState":
        return cls(str(data["id"]), str(data["source"]), int(data["priority"]), int(data["first_seen_ns"]))


@dataclass
class EnrichResult:
    """Rows ready for the enriched topic, trace links, and what changed or was counted."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    trace_updates: dict[TraceKey, TraceState] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


def _escape(value: str) -> str:
    cut = value[:_MAX_REJECTED_CHARS]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cut)


def _link(key: TraceKey, state: TraceState, last_ns: int) -> dict[str, Any]:
    return {"Tenant": key[0], "TraceId": key[1], "CorrelationId": state.correlation_id, "Source": state.source,
            "Priority": state.priority, "FirstSeen": state.first_seen_ns, "LastSeen": last_ns}


def _candidate(resource: Mapping[str, object], attrs: Mapping[str, object], body: object,
               config: EnrichConfig, row_attrs: dict[str, str], counts: Counter[str]) -> Candidate | None:
    """The record's own valid candidate; an invalid one is recorded on the row and dropped."""
    found = find_correlation_id(resource, attrs, body, None, config.correlation)
    if found is None:
        return None
    verdict = validate_correlation_id(found.value, config.correlation.policy)
    if verdict.ok:
        return found
    row_attrs[REJECTED_REASON] = str(verdict.reason)
    row_attrs[REJECTED_VALUE] = _escape(found.value)
    counts["correlation_rejected"] += 1
    counts[f"correlation_rejected:{verdict.reason}"] += 1
    return None


def _settle_trace(key: TraceKey, found: Sequence[tuple[Candidate, int]], times_ns: Iterable[int],
                  known: TraceState | None, result: EnrichResult) -> TraceState:
    """The trace's ID after this batch: the best source wins; equal sources keep the first."""
    times = list(times_ns)
    first_ns, last_ns = min(times), max(times)
    best = min(found, key=lambda cf: (PRIORITY[cf[0].source], cf[1]), default=None)
    state = known
    if best is not None and (known is None or PRIORITY[best[0].source] < known.priority):
        candidate = best[0]
        state = TraceState(candidate.value, candidate.source, PRIORITY[candidate.source],
                           known.first_seen_ns if known else first_ns)
        result.counts["correlation_found"] += 1
    elif known is None:
        # Derived from the trace alone (its ID and the event time of its first record),
        # so a replay of the same records generates the same ID.
        state = TraceState(generate_correlation_id(key[1], first_ns), "generated",
                           PRIORITY["generated"], first_ns)
        result.counts["correlation_generated"] += 1
    assert state is not None
    if state is not known:
        result.trace_updates[key] = state
        result.links.append(_link(key, state, last_ns))
    return state


def trace_key(item: Any) -> TraceKey:
    """The (tenant, trace ID) of a span or log record."""
    return tenant_of(item.resource_attrs), item.row["TraceId"]


def _by_trace(items: Sequence[Any]) -> dict[TraceKey, list[Any]]:
    groups: dict[TraceKey, list[Any]] = {}
    for item in items:
        groups.setdefault(trace_key(item), []).append(item)
    return groups


def _assign(key: TraceKey, group: Sequence[Any], own: Sequence[Candidate | None],
            found: Sequence[tuple[Candidate, int]], known: Mapping[TraceKey, TraceState],
            result: EnrichResult, identity: Any) -> None:
    """Give every record of ``group`` its ID: the trace's, or (no trace) its own."""
    if key[1]:
        state = _settle_trace(key, found, (r.row["Timestamp"] for r in group), known.get(key), result)
        for record in group:
            record.row["CorrelationId"] = state.correlation_id
    else:
        for record, candidate in zip(group, own):
            record.row["CorrelationId"] = candidate.value if candidate else generate_correlation_id(
                identity(record), record.row["Timestamp"])
            if candidate is None:
                result.counts["correlation_generated"] += 1
    result.rows.extend(r.row for r in group)


def enrich_spans(records: Sequence[SpanRecord], known: Mapping[TraceKey, TraceState],
                 config: EnrichConfig) -> EnrichResult:
    """Set CorrelationId on every span, trace by trace; rename deprecated attributes.

    ``known`` holds the states of traces seen before (agents/enrich/state.py). Nothing
    is dropped: an invalid ID is replaced and its reason kept in the span's attributes."""
    result = EnrichResult()
    for key, group in _by_trace(records).items():
        found: list[tuple[Candidate, int]] = []
        own: list[Candidate | None] = []
        for record in group:
            row = record.row
            attrs, renamed = normalize_attributes(row["SpanAttributes"])
            row["SpanAttributes"] = {k: str(v) for k, v in attrs.items()}
            result.counts["semconv_rewritten"] += len(renamed)
            candidate = _candidate(record.resource_attrs, record.attrs, None, config, row["SpanAttributes"], result.counts)
            own.append(candidate)
            if candidate is not None:
                found.append((candidate, row["Timestamp"]))
        _assign(key, group, own, found, known, result, lambda r: r.row["SpanId"])
    result.counts["spans"] += len(records)
    return result


def enrich_logs(records: Sequence[LogRecordRow], known: Mapping[TraceKey, TraceState],
                config: EnrichConfig) -> EnrichResult:
    """Set CorrelationId on every log record and normalise severity.

    Records with a trace follow the trace's ID (and can set it, e.g. from a JSON body);
    records without one keep their own ID or get one derived from their content."""
    result = EnrichResult()
    for key, group in _by_trace(records).items():
        found: list[tuple[Candidate, int]] = []
        own: list[Candidate | None] = []
        for record in group:
            row = record.row
            row["SeverityNumber"], row["SeverityText"] = normalize_severity(row["SeverityNumber"], row["SeverityText"])
            candidate = _candidate(record.resource_attrs, record.attrs, record.body, config, row["LogAttributes"], result.counts)
            own.append(candidate)
            if candidate is not None:
                found.append((candidate, row["Timestamp"]))
        _assign(key, group, own, found, known, result,
                lambda r: f"{r.row['Timestamp']}:{r.row['ServiceName']}:{r.row['Body']}")
    result.counts["logs"] += len(records)
    return result


def enrich_metrics(tables: Mapping[str, list[dict[str, Any]]], exemplars: list[dict[str, Any]],
                   known: Mapping[TraceKey, TraceState], limiter: CardinalityLimiter, now_s: float) -> EnrichResult:
    """Limit the cardinality of point attributes and give exemplars their trace's ID.

    Point attributes past the limit become the overflow marker (they are the series key);
    an exemplar whose trace is not known yet keeps '' and is resolved at query time."""
    result = EnrichResult()
    before = sum(limiter.overflow_counts().values())
    for table, rows in tables.items():
        for row in rows:
            row["Attributes"] = limiter.limit_attributes(row["Attributes"], now_s)
            row["_table"] = table
            result.rows.append(row)
    result.counts["cardinality_overflow"] += sum(limiter.overflow_counts().values()) - before
    for exemplar in exemplars:
        state = known.get((exemplar["Tenant"], exemplar["TraceId"])) if exemplar["TraceId"] else None
        exemplar["CorrelationId"] = state.correlation_id if state else ""
        exemplar["_table"] = "metric_exemplars"
        result.rows.append(exemplar)
    result.counts["points"] += len(result.rows) - len(exemplars)
    return result
