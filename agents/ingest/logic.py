"""What the ingest stage decides in Python (pure): correlation IDs per trace, the fate of
each distinct clue, and the text of values only Python can write.

The engine hands over facts, not rows: one group per (tenant, trace, clue), where a clue
is the correlation-relevant attributes (and log body) that the group's records carry.
Rows of one trace nearly always share one clue, so this runs per trace, and the rules
of agents/correlation.py are applied exactly as they would be to each record."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValueList

from agents.correlation import (
    SOURCE_PRIORITY,
    Candidate,
    CorrelationConfig,
    check_candidate,
    find_correlation_id,
    generated_id,
)
from schemas.otlp_sql import ARRAY_PREFIX
from schemas.otlp_values import any_value_to_python, any_value_to_string

# A trace is a tenant's own: two tenants sending one trace ID (a call across tenants carries
# its traceparent) each keep their own correlation state and links.
TraceKey = tuple[str, str]  # (tenant, trace ID)


@dataclass(frozen=True)
class TraceState:
    """What the worker remembers of a trace: its ID, where the ID came from, and when the
    trace was first seen (the anchor of a generated ID)."""

    correlation_id: str
    source: str
    priority: int
    first_seen_ns: int


@dataclass(frozen=True)
class ClueGroup:
    """Rows of one (tenant, trace) that carry the same clue: how many, and their times."""

    tenant: str
    trace_id: str
    clue_hash: int
    resource: Mapping[str, object]  # the clue's attributes, typed as any_value_to_python gives them
    record: Mapping[str, object]
    body: object
    first_ns: int
    last_ns: int
    rows: int


@dataclass(frozen=True)
class ClueVerdict:
    """For the rows of one clue: the ID they carry when they have no trace ('' when none is
    valid: the engine generates one per row), and the rejected ID and why ('' if none)."""

    correlation_id: str = ""
    rejected_reason: str = ""
    rejected_value: str = ""


@dataclass
class Decisions:
    """The IDs of a batch's traces, the verdicts on its clues, the trace states that changed
    (with their links), and counts for the metrics."""

    traces: dict[TraceKey, str] = field(default_factory=dict)
    clues: dict[int, ClueVerdict] = field(default_factory=dict)
    updates: dict[TraceKey, TraceState] = field(default_factory=dict)
    links: list[tuple[TraceKey, TraceState, int]] = field(default_factory=list)  # (trace, state, last seen)
    counts: Counter[str] = field(default_factory=Counter)


def typed_attributes(kvs: Iterable[Mapping[str, Any]]) -> dict[str, object]:
    """KeyValues as schemas/otlp_sql.py's typed_values gives them, as attributes_to_python
    gives them: the last of a repeated key wins."""
    return {kv["key"]: typed_value(kv) for kv in kvs}


def typed_value(kv: Mapping[str, Any]) -> object:
    """One value of typed_values as any_value_to_python gives it."""
    kind = kv["kind"]
    if kind == "string_value":
        return kv["text"]
    if kind == "int_value":
        return kv["int"]
    if kind == "bool_value":
        return kv["bool"]
    if kind == "double_value":
        return kv["double"]
    if kind == "bytes_value":
        return bytes.fromhex(kv["raw"])
    if kind == "array_value":
        return any_value_to_python(AnyValue(array_value=ArrayValue.FromString(bytes.fromhex(kv["raw"]))))
    if kind == "kvlist_value":
        return any_value_to_python(AnyValue(kvlist_value=KeyValueList.FromString(bytes.fromhex(kv["raw"]))))
    return None


def complex_text(key: str) -> str:
    """The text of a complex value's Join-table key (schemas/otlp_sql.py): the JSON that
    any_value_to_string writes. Raises google.protobuf's DecodeError for bytes that are not
    a valid ArrayValue or KeyValueList (invalid UTF-8 among them)."""
    kind, raw = key[:1], bytes.fromhex(key[1:])
    if kind == ARRAY_PREFIX:
        return any_value_to_string(AnyValue(array_value=ArrayValue.FromString(raw)))
    return any_value_to_string(AnyValue(kvlist_value=KeyValueList.FromString(raw)))


def _candidate(group: ClueGroup, config: CorrelationConfig, verdicts: dict[int, ClueVerdict],
               counts: Counter[str]) -> Candidate | None:
    """The group's own valid candidate; an invalid one is recorded in the clue's verdict."""
    if not group.resource and not group.record and group.body is None:
        return None  # the common case: nothing a candidate could come from
    found = find_correlation_id(group.resource, group.record, group.body, None, config)
    if found is None:
        return None
    rejection = check_candidate(found, config)
    if rejection is None:
        verdicts.setdefault(group.clue_hash, ClueVerdict(found.value))
        return found
    verdicts[group.clue_hash] = ClueVerdict("", rejection.reason, rejection.value)
    counts["correlation_rejected"] += group.rows
    counts[f"correlation_rejected:{rejection.reason}"] += group.rows
    return None


def decide(groups: Sequence[ClueGroup], known: Mapping[TraceKey, TraceState],
           config: CorrelationConfig) -> Decisions:
    """Correlation IDs for a batch's groups; ``known`` holds the states of its traces seen
    before (agents/ingest/state.py).

    A trace's ID only moves to a better source: the best candidate of the batch (lowest
    source priority, then earliest) replaces a stored ID of a worse source; a trace with
    no ID at all gets one generated from its ID and the first time it was seen. Rows
    without a trace keep their own valid candidate, or get an ID the engine generates
    from their identity. An invalid candidate is never used: its value and reason are
    kept on the rows (the verdict), and the rows are never dropped."""
    out = Decisions()
    per_trace: dict[TraceKey, list[ClueGroup]] = {}
    for group in groups:
        per_trace.setdefault((group.tenant, group.trace_id), []).append(group)
    for key, members in per_trace.items():
        found = [(c, g.first_ns) for g in members if (c := _candidate(g, config, out.clues, out.counts)) is not None]
        if not key[1]:
            out.counts["correlation_generated"] += sum(g.rows for g in members if g.clue_hash not in out.clues
                                                       or not out.clues[g.clue_hash].correlation_id)
            continue
        first_ns, last_ns = min(g.first_ns for g in members), max(g.last_ns for g in members)
        out.traces[key] = _settle(key, found, first_ns, last_ns, known.get(key), out).correlation_id
    return out


def _settle(key: TraceKey, found: Sequence[tuple[Candidate, int]], first_ns: int, last_ns: int,
            known: TraceState | None, out: Decisions) -> TraceState:
    best = min(found, key=lambda cf: (SOURCE_PRIORITY[cf[0].source], cf[1]), default=None)
    state = known
    if best is not None and (known is None or SOURCE_PRIORITY[best[0].source] < known.priority):
        candidate = best[0]
        state = TraceState(candidate.value, candidate.source, SOURCE_PRIORITY[candidate.source],
                           known.first_seen_ns if known else first_ns)
        out.counts["correlation_found"] += 1
    elif state is None:
        # Derived from the trace alone (its ID and the event time of its first record),
        # so a replay of the same records generates the same ID.
        state = TraceState(generated_id(key[1], first_ns), "generated", SOURCE_PRIORITY["generated"], first_ns)
        out.counts["correlation_generated"] += 1
    if state is not known:
        out.updates[key] = state
        out.links.append((key, state, last_ns))
    return state
