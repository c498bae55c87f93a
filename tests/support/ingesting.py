"""Requests through the real ingest path (agents/ingest/batch.py ``Ingestor``) on a test's chDB,
with the rows as plain dicts in the shape the Python decoders used to give them.

Row shape: ClickHouse column names in the order the engine gives them (the insert order),
without ``_record``; DateTime64 values as int nanoseconds; Maps as dicts (in the map's
key order); Nested columns flattened as ``Events.Timestamp`` ... lists. Each call builds a
fresh Ingestor with its own TraceStates and CardinalityLimiter unless the test passes its
own, so nothing a test ingested leaks into the next one."""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
from google.protobuf.message import Message

from agents.cardinality import CardinalityLimiter
from agents.ingest.agent import build_plans
from agents.ingest.batch import Ingested, Ingestor, Refusal
from agents.ingest.batching import RECORD
from agents.ingest.config import IngestConfig
from agents.ingest.logic import TraceKey, TraceState
from agents.ingest.plan import Plan
from agents.ingest.state import TraceStates
from agents.ingest.writer import BatchWriter, Origin
from agents.metrics import WorkerMetrics
from core.types import Signal
from sinks.embedded import EmbeddedWarehouse
from sinks.warehouse import Warehouse

Value = Message | bytes | None
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class IngestedRows:
    """What one batch became, in plain Python: rows per output table (in output order),
    the record index of each row, and the refusals, trace links, trace-state updates and
    counts of the batch."""

    tables: dict[str, Rows]
    records: dict[str, list[int]]
    refused: dict[int, Refusal] = field(default_factory=dict)
    links: Rows = field(default_factory=list)
    updates: dict[TraceKey, TraceState] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def of(self, record: int) -> dict[str, Rows]:
        """The rows of one record of the batch, per table (tables it has no rows in too)."""
        return {table: [row for row, r in zip(rows, self.records[table], strict=True) if r == record]
                for table, rows in self.tables.items()}

    def rows(self, table: str, record: int | None = None) -> Rows:
        """The rows of ``table`` (of ``record`` only, when given); [] when the batch has none."""
        if table not in self.tables:
            return []
        return self.tables[table] if record is None else self.of(record)[table]


def plain_rows(table: pa.Table) -> tuple[Rows, list[int]]:
    """An output table as rows in the old shape, and each row's ``_record``.

    Raises AssertionError for a map holding one key twice (ClickHouse Maps may; ours
    must not, so comparing maps as dicts loses nothing)."""
    records = table.column(RECORD).to_pylist()
    data = table.drop_columns([RECORD])
    data = data.cast(pa.schema([f.with_type(_int_times(f.type)) for f in data.schema]))
    rows = data.to_pylist()
    for f in data.schema:
        if _has_map(f.type):
            for row in rows:
                row[f.name] = _maps_as_dicts(row[f.name], f.type)
    return rows, records


def _int_times(t: pa.DataType) -> pa.DataType:
    """``t`` with every timestamp (at any depth) as int64 nanoseconds."""
    if pa.types.is_timestamp(t):
        if t.unit != "ns":
            raise AssertionError(f"expected DateTime64(9), got {t}")
        return pa.int64()
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_int_times(t.value_type)))
    return t


def _has_map(t: pa.DataType) -> bool:
    return pa.types.is_map(t) or (pa.types.is_list(t) and _has_map(t.value_type))


def _maps_as_dicts(value: Any, t: pa.DataType) -> Any:
    if pa.types.is_map(t):
        pairs = list(value)
        found = dict(pairs)
        if len(found) != len(pairs):
            raise AssertionError(f"a map holds a key twice: {pairs!r}")
        return found
    return [_maps_as_dicts(item, t.value_type) for item in value]


def rows_of(ingested: Ingested) -> IngestedRows:
    """``ingested`` in plain Python (see IngestedRows)."""
    tables: dict[str, Rows] = {}
    records: dict[str, list[int]] = {}
    for name, table in ingested.tables.items():
        tables[name], records[name] = plain_rows(table)
    return IngestedRows(tables, records, dict(ingested.refused), list(ingested.links), dict(ingested.updates),
                        Counter(ingested.counts))


def ingestor(warehouse: Warehouse, *, config: IngestConfig | None = None, states: TraceStates | None = None,
             limiter: CardinalityLimiter | None = None, plans: Mapping[Signal, Plan] | None = None) -> Ingestor:
    """An Ingestor on ``warehouse``'s engine, built as the ingest stage builds it; each part
    not given is fresh (default IngestConfig, empty TraceStates, empty limiter)."""
    config = config or IngestConfig()
    e = config.enrich
    states = states if states is not None else TraceStates(warehouse, e.trace_cache_traces)
    if limiter is None:
        limiter = CardinalityLimiter(e.cardinality_max_values, e.cardinality_window_s, e.cardinality_max_keys)
    if not isinstance(warehouse, EmbeddedWarehouse):
        raise TypeError("the ingest helpers run on the test's chDB warehouse (the warehouse fixture)")
    return Ingestor(warehouse.engine, config, states, plans or build_plans(config, limiter))


def raw(value: Value) -> bytes | None:
    """A record value as the raw topic holds it: a message serialized, bytes as they are."""
    return value.SerializeToString() if isinstance(value, Message) else value


async def ingest_async(warehouse: Warehouse, signal: Signal, values: Sequence[Value], *,
                       config: IngestConfig | None = None, states: TraceStates | None = None,
                       limiter: CardinalityLimiter | None = None,
                       plans: Mapping[Signal, Plan] | None = None) -> IngestedRows:
    """One batch of ``values`` (export requests or raw bytes, record i at index i) through
    ``Ingestor.ingest``, as plain rows. Raises what ingest raises."""
    built = ingestor(warehouse, config=config, states=states, limiter=limiter, plans=plans)
    return rows_of(await built.ingest(signal, [raw(v) for v in values]))


def spliced(message: Message, placeholder: str, replacement: bytes) -> bytes:
    """``message`` serialized with the one occurrence of ``placeholder``'s UTF-8 bytes
    replaced by ``replacement`` (the same length, so every length prefix stays right):
    how a test builds a record protobuf's serializer would refuse to write, such as text
    that is not valid UTF-8."""
    data, needle = message.SerializeToString(), placeholder.encode()
    if len(replacement) != len(needle) or data.count(needle) != 1:
        raise AssertionError(f"{placeholder!r} must occur once and be as long as {replacement!r}")
    return data.replace(needle, replacement)


def numbered(cases: Sequence[Any]) -> list[Any]:
    """pytest.param cases with their position prepended to their values (same ids): the
    record index of each case when a module ingests all of a table's cases as one batch."""
    return [pytest.param(i, *case.values, id=case.id, marks=case.marks) for i, case in enumerate(cases)]


def ingest_rows(warehouse: Warehouse, signal: Signal, values: Sequence[Value], *,
                config: IngestConfig | None = None, states: TraceStates | None = None,
                limiter: CardinalityLimiter | None = None,
                plans: Mapping[Signal, Plan] | None = None) -> IngestedRows:
    """``ingest_async`` for a test that runs no event loop of its own."""
    return asyncio.run(ingest_async(warehouse, signal, values, config=config, states=states, limiter=limiter,
                                    plans=plans))


async def store_async(warehouse: Warehouse, signal: Signal, values: Sequence[Value], topic: str,
                      first_offset: int = 0, *, config: IngestConfig | None = None) -> IngestedRows:
    """``values`` through the ingest stage's own path, ``Ingestor.ingest`` then
    ``BatchWriter.write``, as one batch read from ``topic`` at offsets ``first_offset``….
    Raises AssertionError when a record is refused or set aside."""
    config = config or IngestConfig()
    built = ingestor(warehouse, config=config)
    ingested = await built.ingest(signal, [raw(v) for v in values])
    refused: list[tuple[int, str, str]] = []

    async def set_aside(index: int, kind: str, reason: str) -> None:
        refused.append((index, kind, reason))

    origins = [Origin(topic, 0, first_offset + i) for i in range(len(values))]
    await BatchWriter(warehouse, config, WorkerMetrics()).write(ingested, origins, set_aside)
    if ingested.refused or refused:
        raise AssertionError(f"records refused: {ingested.refused or refused}")
    return rows_of(ingested)
