"""Storing an ingested batch: trace links first, then the rows in inserts of bounded size,
each idempotent (a token from its offsets) and retried while ClickHouse is unavailable.

The live agents and `ollystack replay` both store through ``BatchWriter``. A batch may
hold records of several partitions (consecutive ones of each): one insert serves them all."""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from agents.deadletter import Kind
from agents.ingest.batch import Ingested
from agents.ingest.batching import record_ranges, rows_of
from agents.ingest.config import IngestConfig
from agents.metrics import WorkerMetrics
from core.errors import RowsRefusedError
from schemas.tables import TRACE_LINKS_TABLE
from sinks.batches import BatchId, write_tables
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where a raw record was read: its topic (as named in dedup tokens), partition, offset."""

    topic: str
    partition: int
    offset: int


SetAside = Callable[[int, Kind, str], Awaitable[None]]


def batch_id(origins: Sequence[Origin]) -> BatchId:
    """The batch of records read at ``origins``: its offset range in each partition (a
    batch holds consecutive records of each partition it reads)."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for origin in origins:
        key = (origin.topic, origin.partition)
        first, last = ranges.get(key, (origin.offset, origin.offset))
        ranges[key] = (min(first, origin.offset), max(last, origin.offset))
    return BatchId(tuple((topic, partition, first, last) for (topic, partition), (first, last) in ranges.items()))


@dataclass
class Written:
    """The records of a batch whose rows are stored, and how many rows (links included)."""

    stored: set[int]
    rows: int = 0


class BatchWriter:
    """Inserts ingested batches; a run ClickHouse refuses as data is inserted record by
    record, and each record it still refuses is set aside through ``set_aside``."""

    def __init__(self, warehouse: Warehouse, config: IngestConfig, metrics: WorkerMetrics,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.warehouse, self.config, self.metrics, self.should_stop = warehouse, config, metrics, should_stop

    async def write(self, ingested: Ingested, positions: Sequence[Origin], set_aside: SetAside) -> Written:
        """Store ``ingested`` (record i read at ``positions[i]``); say which records' rows
        are stored. Returns once ClickHouse holds them; raises the retriable
        WarehouseError when told to stop while ClickHouse is down (nothing is stored then
        that a retry would not store again under the same tokens)."""
        written = Written(set())
        links: list[dict[str, Any]] = ingested.links
        for first, last in record_ranges(ingested.tables, len(positions), self.config.sink.batch_max_rows):
            tables = {name: rows_of(table, first, last) for name, table in ingested.tables.items()}
            started = time.perf_counter()
            try:
                rows = await self._insert(ingested, positions, first, last, links, tables)
            except RowsRefusedError as exc:
                log.warning("batch refused; inserting record by record",
                            extra={"signal": ingested.signal, "error": str(exc)})
                if links:
                    written.rows += await self._insert(ingested, positions, first, last, links, {})
                links = []
                await self._one_by_one(ingested, positions, first, last, set_aside, written)
                continue
            links = []  # every link is stored with the first run, before any row
            self.metrics.insert_seconds.labels(ingested.signal).observe(time.perf_counter() - started)
            self.metrics.batch_rows.labels(ingested.signal).observe(rows)
            written.rows += rows
            written.stored.update(i for i in range(first, last + 1) if i not in ingested.refused)
        return written

    async def _insert(self, ingested: Ingested, positions: Sequence[Origin], first: int, last: int,
                      links: list[dict[str, Any]], tables: dict[str, pa.Table]) -> int:
        batch = batch_id(positions[first:last + 1])
        signal = ingested.signal
        return await write_tables(self.warehouse, {TRACE_LINKS_TABLE: links, **tables}, batch,
                                  self.config.insert_retry, self.should_stop,
                                  lambda exc: self.metrics.insert_retries.labels(signal).inc())

    async def _one_by_one(self, ingested: Ingested, positions: Sequence[Origin], first: int, last: int,
                          set_aside: SetAside, written: Written) -> None:
        for index in range(first, last + 1):
            if index in ingested.refused:
                continue
            tables = {name: rows_of(table, index, index) for name, table in ingested.tables.items()}
            try:
                written.rows += await self._insert(ingested, positions, index, index, [], tables)
                written.stored.add(index)
            except RowsRefusedError as exc:
                reason = f"ClickHouse refused the rows: {exc}"
                ingested.refused[index] = ("refused", reason)
                await set_aside(index, "refused", reason)
