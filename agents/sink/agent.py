"""The sink agents: enriched topics -> ClickHouse, acknowledging records only after the insert."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from agents.deadletter import Kind, SourceRecord
from agents.sink.config import SinkConfig
from agents.sink.logic import by_partition, chunk_by_rows
from agents.stage import StageDeps
from core.errors import DecodeError, RowsRefusedError, WarehouseError
from core.types import Signal
from schemas.enriched import EnrichedRecord, decode_enriched, merge_tables
from sinks.batches import BatchId, write_tables

log = logging.getLogger(__name__)


class SinkStage:
    """One sink agent per enriched topic.

    Faust's ``take()`` acknowledges a batch in a ``finally`` even when handling it raised,
    which would commit the offsets of rows that never reached ClickHouse. ``noack_take()``
    leaves acknowledgement to us: records are acknowledged only after their insert
    returned, and an insert is retried (same rows, same dedup token) while ClickHouse is
    unavailable. A record ClickHouse refuses, or that is not an enriched record, is
    dead-lettered with the reason, and the records around it are stored."""

    def __init__(self, config: SinkConfig, deps: StageDeps) -> None:
        self.config, self.deps = config, deps
        topics = deps.topics
        self.agent_names: list[str] = []
        sources: tuple[tuple[Signal, str], ...] = (
            ("traces", topics.enriched_spans), ("logs", topics.enriched_logs), ("metrics", topics.enriched_metrics))
        for signal, source in sources:
            name = f"sink-{signal}"
            deps.app.agent(deps.topic(source), name=name)(self._loop(signal))
            self.agent_names.append(name)

    async def _set_aside(self, event: Any, kind: Kind, reason: str) -> None:
        await self.deps.deadletters.write(SourceRecord.of(event.message), "sink", kind, reason)

    async def _insert(self, signal: Signal, records: list[tuple[Any, EnrichedRecord]]) -> None:
        """Insert one run of records as one batch, retried while ClickHouse is unavailable."""
        first, last = records[0][0].message, records[-1][0].message
        batch = BatchId(first.topic, first.partition, first.offset, last.offset)
        metrics = self.deps.metrics
        started = time.perf_counter()
        rows = await write_tables(self.deps.warehouse, merge_tables([r.tables for _, r in records]), batch,
                                  self.config.retry, lambda: self.deps.app.should_stop,
                                  lambda exc: metrics.insert_retries.labels(signal).inc())
        metrics.insert_seconds.labels(signal).observe(time.perf_counter() - started)
        metrics.batch_rows.labels(signal).observe(rows)

    async def _write_partition(self, signal: Signal, stream: Any, events: list[Any]) -> None:
        decoded = []
        for event in events:
            try:
                decoded.append((event, decode_enriched(event.value)))
            except DecodeError as exc:
                await self._set_aside(event, "undecodable", str(exc))
        for chunk in chunk_by_rows(decoded, self.config.batch_max_rows):
            try:
                await self._insert(signal, chunk)
            except WarehouseError as exc:
                if exc.retriable:
                    raise
                await self._write_one_by_one(signal, chunk, exc)
            except Exception as exc:  # noqa: BLE001 - a bug in one batch must not stall the partition
                log.exception("insert failed", extra={"topic": chunk[0][0].message.topic,
                                                      "partition": chunk[0][0].message.partition,
                                                      "offset": chunk[0][0].message.offset})
                await self._write_one_by_one(signal, chunk, exc)
        for event in events:
            await stream.ack(event)

    async def _write_one_by_one(self, signal: Signal, records: list[tuple[Any, EnrichedRecord]],
                                first_error: Exception) -> None:
        """A batch ClickHouse refuses as data: store every record it can, set aside the others."""
        log.warning("batch refused; inserting record by record", extra={"signal": signal, "error": str(first_error)})
        for item in records:
            try:
                await self._insert(signal, [item])
            except WarehouseError as exc:
                if exc.retriable:
                    raise
                kind: Kind = "refused" if isinstance(exc, RowsRefusedError) else "failed"
                await self._set_aside(item[0], kind, f"ClickHouse refused the rows: {exc}")
            except Exception as exc:  # noqa: BLE001 - this record alone fails: set it aside, go on
                await self._set_aside(item[0], "failed", f"insert failed: {exc!r}")

    def _loop(self, signal: Signal) -> Callable[[Any], Any]:
        stage = self

        async def sink(stream: Any) -> None:
            config = stage.config
            async for events in stream.noack_take(config.batch_max_records, within=config.batch_max_age_s):
                for group in by_partition(events).values():
                    await stage._write_partition(signal, stream, group)

        sink.__name__ = f"sink_{signal}"
        return sink


def build(config: SinkConfig, deps: StageDeps) -> SinkStage:
    """The sink stage on ``deps.app``; its config is checked before any record flows.

    Raises ConfigError naming the field that cannot work."""
    return SinkStage(config.check(), deps)
