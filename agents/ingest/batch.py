"""One batch of raw records -> Arrow tables of ClickHouse rows, decided and enriched.

The live agent and `ollystack replay` both go through ``Ingestor.ingest``, so a replay
produces exactly the rows the live path would. The engine parses and reshapes; Python
decides once per trace, clue or distinct value (agents/ingest/logic.py), never per row."""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
from google.protobuf.message import DecodeError as ProtobufDecodeError

from agents.ingest.config import IngestConfig
from agents.ingest.logic import TraceKey, TraceState, complex_text
from agents.ingest.plan import Plan
from agents.ingest.staging import StagedBatch, write_schemas
from agents.ingest.state import TraceStates
from core.types import Signal
from sinks.engine import Engine
from sinks.retry import retry_warehouse

Refusal = tuple[Literal["undecodable", "refused"], str]


@dataclass
class Ingested:
    """What a batch became: rows per table (each with ``_record``, the record's index in
    the batch), trace links to store first, the trace states that changed, the records
    set aside with why, and counts for the metrics."""

    signal: Signal
    tables: dict[str, pa.Table] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    updates: dict[TraceKey, TraceState] = field(default_factory=dict)
    refused: dict[int, Refusal] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


class _Context:
    """What a plan may do while deciding (agents/ingest/plan.py BatchContext)."""

    def __init__(self, staged: StagedBatch, flat: str, ingestor: Ingestor, excluded: Collection[int]) -> None:
        self.staged, self.flat, self.ingestor = staged, flat, ingestor
        self.nested = staged.nested
        self.config = ingestor.config
        self.excluded = excluded
        self.complex_table: str | None = None

    async def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        return await asyncio.to_thread(self.staged.query, sql, dict(params) if params else None)

    async def lookup(self, kind: str, columns: str, keys: str, data: pa.Table) -> str:
        return await asyncio.to_thread(self.staged.lookup, kind, columns, keys, data)

    async def known(self, traces: Collection[TraceKey]) -> dict[TraceKey, TraceState]:
        ingestor = self.ingestor
        return await retry_warehouse(lambda: ingestor.states.known(traces), "trace state lookup",
                                     ingestor.config.state_retry, ingestor.should_stop)


class Ingestor:
    """Turns batches of one worker's raw records into rows; holds the trace-state cache and
    the plans of the three signals."""

    def __init__(self, engine: Engine, config: IngestConfig, states: TraceStates, plans: Mapping[Signal, Plan],
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.engine, self.config, self.states, self.plans = engine, config, states, plans
        self.should_stop = should_stop
        self.schemas = write_schemas(engine)

    async def ingest(self, signal: Signal, values: Sequence[bytes | None]) -> Ingested:
        """The rows of ``values`` (raw records of ``signal``, in offset order).

        Records that cannot be read or stored are in ``refused`` and have no rows; the
        others are enriched. Raises WarehouseError when the engine fails for a reason
        that is not a record's (retriable or not: the caller decides)."""
        out = Ingested(signal)
        for index, value in enumerate(values):
            if not value:
                out.refused[index] = ("undecodable", "empty record value")
        readable = [(i, v) for i, v in enumerate(values) if v and i not in out.refused]
        plan = self.plans[signal]
        with StagedBatch(self.engine, signal, self.schemas[signal]) as staged:
            unreadable = await asyncio.to_thread(_parse, staged, readable)
            out.refused.update({i: ("undecodable", reason) for i, reason in unreadable.items()})
            if len(out.refused) == len(values):
                return out
            flat = await asyncio.to_thread(_flatten, staged, plan)
            context = _Context(staged, flat, self, out.refused)
            await self._screen(context, out)
            flags_sql = plan.flags(flat)
            flags = (await context.query(flags_sql)).to_pylist() if flags_sql else []
            decided = await plan.decide(context, flags[0] if flags else {})
            out.refused.update({i: ("refused", reason) for i, reason in decided.refused.items()})
            out.links, out.updates = decided.links, decided.updates
            out.counts.update(decided.counts)
            excluded = {"excluded": sorted(out.refused)}
            for table, sql in plan.outputs(flat, decided.lookups).items():
                out.tables[table] = await context.query(sql, excluded)
        return out

    async def _screen(self, context: _Context, out: Ingested) -> None:
        """Set aside records the engine flagged, and turn the batch's array and kvlist
        values into their JSON text (a record holding one protobuf refuses is set aside)."""
        screened = await context.query(
            "SELECT record, max(refusal) AS refusal, max(length(complex) > 0) AS complex "
            f"FROM {context.flat} GROUP BY record HAVING refusal != '' OR complex")
        for row in screened.to_pylist():
            if row["refusal"]:
                out.refused[row["record"]] = ("refused", row["refusal"])
        if not any(row["complex"] for row in screened.to_pylist()):
            return
        found = await context.query(
            f"SELECT key, groupUniqArray(record) AS records FROM {context.flat} ARRAY JOIN complex AS key "
            "WHERE refusal = '' GROUP BY key")
        keys, texts = [], []
        for key, records in zip(found.column("key").to_pylist(), found.column("records").to_pylist(), strict=True):
            try:
                texts.append(complex_text(key))
                keys.append(key)
            except (ProtobufDecodeError, ValueError, RecursionError) as exc:
                for record in records:
                    reason = f"an array or kvlist value is not valid OTLP: {exc}"
                    out.refused.setdefault(record, ("undecodable", reason))
        context.complex_table = await context.lookup("complex", "Key String, Text String", "Key",
                                                     pa.table({"Key": keys, "Text": texts}))


def _parse(staged: StagedBatch, readable: list[tuple[int, bytes]]) -> dict[int, str]:
    return staged.parse(readable).reasons


def _flatten(staged: StagedBatch, plan: Plan) -> str:
    flat = staged.create("flat", plan.flat_columns)
    staged.engine.run(plan.flatten(staged.nested, flat))
    return flat
