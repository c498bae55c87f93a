"""What every signal's plan gives the ingest batch, and what the batch gives a plan back.

A plan (spans.py, logs.py, metrics.py) knows its signal's SQL: how staged records are
flattened into one row per span, log record or data point, which facts Python decides
on, and how each output table is selected with those decisions applied. Every flat
table has ``record`` (the raw record's index in the batch), ``refusal`` ('' or why the
record cannot be stored) and ``complex`` (Join-table keys of its array and kvlist values)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from agents.ingest.config import IngestConfig
from agents.ingest.logic import TraceKey, TraceState
from core.types import Signal


@dataclass(frozen=True)
class Lookups:
    """The Join tables of a batch's decisions, by role; None where the batch needs none."""

    complex: str | None = None  # complex value key -> JSON text
    traces: str | None = None  # (tenant, trace ID) -> correlation ID
    clues: str | None = None  # clue hash -> verdict (ID of a traceless row, rejected ID)
    resources: str | None = None  # (record, resource number) -> attribute map, service name
    renames: str | None = None  # attribute keys' hash -> rename plan (agents/semconv.py)
    statements: str | None = None  # db.statement -> masked text
    severities: str | None = None  # (number, text) -> normalised (number, text)
    overflow: str | None = None  # (key, value) of point attributes past the cardinality limit


@dataclass
class Decided:
    """What a plan decided for a batch: its lookups, the trace states that changed, the
    trace links to store before any row, records it refuses, and counts."""

    lookups: Lookups
    updates: dict[TraceKey, TraceState] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


class BatchContext(Protocol):
    """What a plan may do while deciding: query its flat table, store a Join table, ask
    for the states of traces seen before."""

    flat: str
    nested: str  # the batch's records as parsed (schemas/otlp_wire.py STRUCTURES)
    config: IngestConfig
    complex_table: str | None
    excluded: Collection[int]  # records already refused: their rows are not decided on

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Awaitable[pa.Table]: ...

    def lookup(self, kind: str, columns: str, keys: str, data: pa.Table) -> Awaitable[str]: ...

    def known(self, traces: Collection[TraceKey]) -> Awaitable[dict[TraceKey, TraceState]]: ...


class Plan(Protocol):
    signal: Signal
    flat_columns: str  # the flat table's column definitions

    def flatten(self, nested: str, flat: str) -> str:
        """INSERT INTO ``flat`` SELECT one row per item of the records in ``nested``."""

    def flags(self, flat: str) -> str | None:
        """SELECT one row of UInt8 flags saying which optional facts the batch needs
        (None: the plan has none)."""

    async def decide(self, batch: BatchContext, flags: Mapping[str, Any]) -> Decided:
        """Query facts, decide them in Python, and store the decisions as Join tables."""

    def outputs(self, flat: str, lookups: Lookups) -> dict[str, str]:
        """Per output table: SELECT ``_record`` and the table's insert columns, the
        decisions applied, rows of refused records left out, in record order."""


LinkRow = Callable[[TraceKey, TraceState, int], dict[str, Any]]
