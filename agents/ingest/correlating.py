"""Correlation in the engine, shared by the spans and logs plans: the clue column (the
attributes find_correlation_id reads), the facts query's rows as ClueGroups, the Join
tables the decisions are applied through, and a row's correlation ID as an expression."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from agents.correlation import generated_id_sql
from agents.ingest.logic import ClueGroup, Decisions, typed_attributes
from agents.ingest.plan import BatchContext, Lookups
from schemas.otlp_sql import string_set
from schemas.otlp_wire import ATTRIBUTES

CLUE = f"Tuple(resource {ATTRIBUTES}, record {ATTRIBUTES})"


def clue_sql(resource: str, record: str, keys: tuple[str, ...]) -> str:
    """The correlation-relevant attributes of a row: those find_correlation_id reads."""
    wanted = string_set(keys)
    return (f"CAST((arrayFilter(kv -> kv.key IN {wanted}, {resource}), "
            f"arrayFilter(kv -> kv.key IN {wanted}, {record})) AS {CLUE})")


def correlation_sql(lookups: Lookups, identity: str, anchor_ns: str) -> str:
    """A row's correlation ID: its trace's; without a trace, its clue's valid ID, or one
    generated from the row's own identity and time."""
    generated = generated_id_sql(identity, anchor_ns)
    own = generated
    if lookups.clues:
        clue_id = f"joinGet('{lookups.clues}', 'CorrelationId', clue_hash)"
        own = f"if({clue_id} != '', {clue_id}, {generated})"
    if not lookups.traces:
        return own
    return f"if(trace_id != '', joinGet('{lookups.traces}', 'CorrelationId', tenant, trace_id), {own})"


def clue_groups(facts: pa.Table, body: list[object] | None = None) -> list[ClueGroup]:
    """The facts query's rows as ClueGroups (``body``: the typed body of each, for logs)."""
    columns = {name: facts.column(name).to_pylist() for name in
               ("tenant", "trace_id", "clue_hash", "first_ns", "last_ns", "rows")}
    # Most groups carry no relevant attribute: only the others are turned into Python.
    clue = facts.column("clue").combine_chunks()
    sizes = pc.add(pc.list_value_length(clue.field(0)), pc.list_value_length(clue.field(1)))
    carrying = pc.indices_nonzero(pc.fill_null(sizes, 0)).to_pylist()
    typed: dict[int, tuple[dict[str, object], dict[str, object]]] = {}
    for i, pair in zip(carrying, clue.take(pa.array(carrying, pa.int64())).to_pylist(), strict=True):
        resource, record = pair.values()  # an unnamed tuple: a struct of two fields
        typed[i] = (typed_attributes(resource), typed_attributes(record))
    empty: tuple[dict[str, object], dict[str, object]] = ({}, {})
    groups = []
    for i in range(facts.num_rows):
        resource, record = typed.get(i, empty)
        groups.append(ClueGroup(columns["tenant"][i], columns["trace_id"][i], columns["clue_hash"][i],
                                resource, record, body[i] if body is not None else None,
                                columns["first_ns"][i], columns["last_ns"][i], columns["rows"][i]))
    return groups


async def store_decisions(batch: BatchContext, decisions: Decisions) -> dict[str, str | None]:
    """The traces and clues Join tables of ``decisions`` (None for an empty one)."""
    out: dict[str, str | None] = {"traces": None, "clues": None}
    if decisions.traces:
        keys = list(decisions.traces)
        data = pa.table({"tenant": [k[0] for k in keys], "trace_id": [k[1] for k in keys],
                         "CorrelationId": list(decisions.traces.values())})
        out["traces"] = await batch.lookup("traces", "tenant String, trace_id String, CorrelationId String",
                                           "tenant, trace_id", data)
    if decisions.clues:
        hashes = list(decisions.clues)
        verdicts = list(decisions.clues.values())
        data = pa.table({"clue_hash": pa.array(hashes, pa.uint64()),
                         "CorrelationId": [v.correlation_id for v in verdicts],
                         "RejectedReason": [v.rejected_reason for v in verdicts],
                         "RejectedValue": [v.rejected_value for v in verdicts]})
        out["clues"] = await batch.lookup(
            "clues", "clue_hash UInt64, CorrelationId String, RejectedReason String, RejectedValue String",
            "clue_hash", data)
    return out


def link_rows(decisions: Decisions) -> list[dict[str, Any]]:
    """``ollystack_trace_links`` rows of the trace states that changed."""
    return [{"Tenant": key[0], "TraceId": key[1], "CorrelationId": state.correlation_id, "Source": state.source,
             "Priority": state.priority, "FirstSeen": state.first_seen_ns, "LastSeen": last_ns}
            for key, state, last_ns in decisions.links]
