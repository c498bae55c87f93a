"""The sink agents: enriched topics -> ClickHouse, acknowledging records only after the insert."""
from __future__ import annotations

import logging
import time
from typing import Any

import faust

from agents.deadletter import send_dead_letter
from agents.metrics import WorkerMetrics
from agents.sink.config import SinkConfig
from agents.sink.logic import BatchId, insert_with_retry
from core.errors import DecodeError, WarehouseError
from core.settings import Settings
from schemas.enriched import decode_enriched, merge_tables
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


class SinkStage:
    """One sink agent per enriched topic.

    Faust's ``take()`` acknowledges a batch in a ``finally`` even when handling it raised,
    which would commit the offsets of rows that never reached ClickHouse. ``noack_take()``
    leaves acknowledgement to us: records are acknowledged only after their insert
    returned, and a batch is retried (same rows, same dedup token) until it lands."""

    def __init__(self, app: faust.App, settings: Settings, warehouse: Warehouse, config: SinkConfig,
                 metrics: WorkerMetrics) -> None:
        self.app, self.warehouse, self.config, self.metrics = app, warehouse, config.check(), metrics
        raw = dict(key_serializer="raw", value_serializer="raw")
        self.deadletter = app.topic(settings.topics.deadletter, **raw)
        self.agent_names = []
        topics = settings.topics
        for signal, source in (("spans", topics.enriched_spans), ("logs", topics.enriched_logs),
                               ("metrics", topics.enriched_metrics)):
            name = f"sink-{signal}"
            app.agent(app.topic(source, **raw), name=name)(self._loop(signal))
            self.agent_names.append(name)

    async def _dead_letter(self, event: Any, reason: str) -> None:
        delivery = await send_dead_letter(self.deadletter, event.message, "sink", reason)
        await delivery
        self.metrics.deadletters.labels(event.message.topic, "sink").inc()

    async def _write_partition(self, signal: str, stream: Any, events: list[Any]) -> None:
        first, last = events[0].message, events[-1].message
        batch = BatchId(first.topic, first.partition, first.offset, last.offset)
        parts, good = [], []
        for event in events:
            try:
                parts.append(decode_enriched(event.value))
                good.append(event)
            except DecodeError as exc:
                await self._dead_letter(event, str(exc))
        tables = merge_tables(parts)
        rows = sum(len(r) for r in tables.values())
        started = time.perf_counter()
        try:
            await insert_with_retry(self.warehouse, tables, batch, self.config, lambda: self.app.should_stop,
                                    lambda exc: self.metrics.insert_retries.labels(signal).inc())
        except WarehouseError as exc:
            if exc.retriable:
                raise
            await self._write_one_by_one(signal, good, exc)
        else:
            self.metrics.insert_seconds.labels(signal).observe(time.perf_counter() - started)
            self.metrics.batch_rows.labels(signal).observe(rows)
        for event in events:
            await stream.ack(event)

    async def _write_one_by_one(self, signal: str, events: list[Any], first_error: Exception) -> None:
        """A batch ClickHouse refuses as data: find the record that poisons it."""
        log.warning("batch refused; inserting record by record", extra={"signal": signal, "error": str(first_error)})
        for event in events:
            m = event.message
            try:
                await insert_with_retry(self.warehouse, decode_enriched(event.value),
                                        BatchId(m.topic, m.partition, m.offset, m.offset), self.config,
                                        lambda: self.app.should_stop)
            except WarehouseError as exc:
                if exc.retriable:
                    raise
                await self._dead_letter(event, f"ClickHouse refused the rows: {exc}")

    def _loop(self, signal: str) -> Any:
        stage = self

        async def sink(stream: Any) -> None:
            async for events in stream.noack_take(stage.config.batch_max_records, within=stage.config.batch_max_age_s):
                by_partition: dict[tuple[str, int], list[Any]] = {}
                for event in events:
                    by_partition.setdefault((event.message.topic, event.message.partition), []).append(event)
                for group in by_partition.values():
                    await stage._write_partition(signal, stream, group)

        sink.__name__ = f"sink_{signal}"
        return sink
