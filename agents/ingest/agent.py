"""The ingest stage: raw OTLP topics -> ClickHouse and the enriched topics, a thin loop per
signal around batch.py, reading its raw topic through a RawSource (source.py).

One pass per batch: the engine decodes and reshapes the raw records, Python decides per
trace, the rows are inserted, and the same rows are published to the enriched topic for
the score stage and outside subscribers. A raw record is acknowledged only once its rows
are in ClickHouse and on the enriched topic, or once its dead letter is on the broker."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from agents.cardinality import CardinalityLimiter
from agents.deadletter import Kind, SourceRecord
from agents.ingest.batch import Ingested, Ingestor
from agents.ingest.batching import RECORD, by_partition, rows_of
from agents.ingest.config import IngestConfig
from agents.ingest.logs import LogPlan
from agents.ingest.metrics import MetricPlan
from agents.ingest.plan import Plan
from agents.ingest.source import RawSource
from agents.ingest.spans import SpanPlan
from agents.ingest.state import TraceStates
from agents.ingest.writer import BatchWriter, Origin
from agents.stage import StageDeps
from core.errors import BrokerUnavailableError, WarehouseError
from core.types import Signal
from schemas.enriched import encode_enriched
from sinks.backend import decoding_reader
from sinks.engine import Engine
from sinks.retry import retry_warehouse

log = logging.getLogger(__name__)

# What stores a decoded batch, given the store of the batch before (or None) and the event
# to set once its rows are inserted.
Store = Callable[[Awaitable[None] | None, asyncio.Event], Awaitable[None]]


def build_plans(config: IngestConfig, limiter: CardinalityLimiter) -> dict[Signal, Plan]:
    """The plan of every signal."""
    return {"traces": SpanPlan(config), "logs": LogPlan(config), "metrics": MetricPlan(config, limiter)}


class AckAfterDelivery:
    """Acknowledge source records only when what they produced is on the broker.

    Deliveries complete out of order; the source commits up to the lowest unacknowledged
    offset, so a record whose output was not delivered is read again after a restart.
    A failed delivery is kept and raised on the next call to ``check``."""

    def __init__(self, source: RawSource) -> None:
        self._source = source
        self._error: BaseException | None = None

    def track(self, deliveries: list[asyncio.Future[Any]], records: Sequence[Any]) -> None:
        """Acknowledge ``records`` once every one of ``deliveries`` succeeded."""
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                self._error = fut.exception() or asyncio.CancelledError()
                return
            self._source.ack(records)

        asyncio.gather(*deliveries).add_done_callback(done)

    def check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise BrokerUnavailableError(f"an enriched record was not delivered: {error!r}")


class IngestStage:
    """The three ingest loops, the trace states they share, and the engine they decode with."""

    def __init__(self, config: IngestConfig, deps: StageDeps, engine: Engine,
                 sources: Mapping[Signal, RawSource]) -> None:
        self.config, self.deps, self.sources = config, deps, sources
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.crashed: BaseException | None = None  # what ended a loop, if one ended
        # Trace -> correlation state: a bounded cache in front of the trace links stored in
        # ClickHouse (see TraceStates for why not a Faust table).
        self.traces = TraceStates(decoding_reader(deps.warehouse), config.enrich.trace_cache_traces)
        e = config.enrich
        limiter = CardinalityLimiter(e.cardinality_max_values, e.cardinality_window_s, e.cardinality_max_keys)
        self.ingestor = Ingestor(engine, config, self.traces, build_plans(config, limiter), self._should_stop)
        self.writer = BatchWriter(deps.warehouse, config, deps.metrics, self._should_stop)
        topics = deps.topics
        self._targets: dict[Signal, str] = {"traces": topics.enriched_spans, "logs": topics.enriched_logs,
                                            "metrics": topics.enriched_metrics}
        self.groups = [source.group for source in sources.values()]

    def _should_stop(self) -> bool:
        return self._stopping or bool(self.deps.app.should_stop)

    async def start(self) -> None:
        """Join every source's consumer group, then run a loop per signal. Raises
        BrokerUnavailableError when a group cannot be joined."""
        # Side by side: a broker delays a new group's first rebalance (3 s by default).
        sources = list(self.sources.values())
        results = await asyncio.gather(*(source.start() for source in sources), return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            for source, result in zip(sources, results, strict=True):
                if not isinstance(result, BaseException):
                    await source.stop()
            raise failures[0]
        for signal, source in self.sources.items():
            task = asyncio.ensure_future(self._loop(signal, source, self.deps.topic(self._targets[signal])))
            task.add_done_callback(self._ended)
            self._tasks.append(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self.crashed is None:
            self.crashed = task.exception()
            log.error("an ingest loop stopped", exc_info=self.crashed)

    async def stop(self) -> None:
        """End the loops (what they had not stored is read again later), commit what was
        acknowledged and leave the groups."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        for source in self.sources.values():
            await source.stop()

    async def _set_aside(self, records: Sequence[Any], kind: Kind, reason: str) -> None:
        for record in records:
            await self.deps.deadletters.write(SourceRecord.of(record), "ingest", kind, reason)

    async def _ingest(self, signal: Signal, events: Sequence[Any]) -> Ingested | None:
        """The batch's rows; None when the engine failed on it and every record was tried
        alone (each stored or set aside already). Raises a retriable WarehouseError when
        ClickHouse stayed unavailable while stopping (nothing is acknowledged)."""
        values = [event.value for event in events]
        try:
            return await retry_warehouse(lambda: self.ingestor.ingest(signal, values), "ingest",
                                         self.config.insert_retry, self._should_stop)
        except WarehouseError as exc:
            if exc.retriable or len(events) == 1:
                raise
            log.exception("batch failed in the engine; ingesting its records one by one",
                          extra=_where(events[0]))
        except Exception as exc:  # noqa: BLE001 - a bug in one batch must not stall the partition
            if len(events) == 1:
                raise WarehouseError(f"ingest failed: {exc!r}") from exc
            log.exception("batch failed; ingesting its records one by one", extra=_where(events[0]))
        return None

    async def _batch(self, signal: Signal, source: RawSource, events: Sequence[Any], acks: AckAfterDelivery,
                     target: Any, before: Callable[[], Awaitable[None]]) -> Store | None:
        """Decode and decide ``events``; return what stores them (their rows, dead letters,
        enriched records), to be run once the batch before is inserted, or None when they
        were handled here (after ``before``, one by one when the engine failed on the batch).

        The batch's trace states are remembered at once, so the next batch decides on them
        while this one is stored (a stop loses the cache, which the stored links rebuild)."""
        started = time.perf_counter()
        try:
            ingested = await self._ingest(signal, events)
        except WarehouseError as exc:
            if exc.retriable:
                raise
            await before()
            await self._set_aside(events, "failed", f"ingest failed: {exc}")  # one record, failing alone
            source.ack(events)
            return None
        if ingested is None:
            await before()
            for event in events:
                store = await self._batch(signal, source, [event], acks, target, _nothing)
                if store is not None:
                    await store(None, asyncio.Event())
            return None
        self.deps.metrics.decode_seconds.labels(signal).observe(time.perf_counter() - started)
        self.traces.remember(ingested.updates)
        return functools.partial(self._store, signal, events, acks, target, ingested)

    async def _store(self, signal: Signal, events: Sequence[Any], acks: AckAfterDelivery,
                     target: Any, ingested: Ingested, before: Awaitable[None] | None, inserted: asyncio.Event) -> None:
        """Insert the batch's rows, set ``inserted``, then publish them once ``before`` (the
        store of the batch before) is done: the next batch's insert runs while this one is
        published, and enriched records keep the order of their batches."""
        metrics = self.deps.metrics
        for index, (kind, reason) in sorted(ingested.refused.items()):
            await self._set_aside([events[index]], kind, reason)
        written = await self.writer.write(ingested, [Origin(e.topic, e.partition, e.offset)
                                                    for e in events],
                                         lambda index, kind, reason: self._set_aside([events[index]], kind, reason))
        metrics.records.labels(signal).inc(len(events))
        metrics.stage_in.labels("ingest", events[0].topic).inc(len(events))
        metrics.count_enrich(signal, ingested.counts)
        inserted.set()
        if before is not None:
            await before
        started = time.perf_counter()
        deliveries = await self._publish(signal, [e.partition for e in events], target, ingested,
                                         written.stored)
        metrics.publish_seconds.labels(signal).observe(time.perf_counter() - started)
        acks.track(deliveries, events)

    async def _publish(self, signal: Signal, partitions: Sequence[int], target: Any, ingested: Ingested,
                       stored: set[int]) -> list[asyncio.Future[Any]]:
        """Send the stored rows to the enriched topic, each on the partition its record was
        read from (records there are batches, not single traces, so they carry no key)."""
        deliveries = []
        for name, table in ingested.tables.items():
            if table.num_rows == 0:
                continue
            kept = _in(table, stored)
            # Usually every record is stored: then the rows go out as they are, uncopied.
            rows = table if pc.all(kept).as_py() else table.filter(kept)
            for partition, (first, last) in _runs(partitions).items():
                part = rows_of(rows, first, last)
                if part.num_rows == 0:
                    continue
                encoded = encode_enriched(signal, name, part, self.config.max_record_bytes)
                self.deps.metrics.truncated_rows.labels(signal).inc(encoded.truncated_rows)
                for value in encoded.values:
                    deliveries.append(await target.send(value=value, partition=partition))
                self.deps.metrics.stage_out.labels("ingest", target.get_topic_name()).inc(len(encoded.values))
        return deliveries

    async def _loop(self, signal: Signal, source: RawSource, target: Any) -> None:
        acks = AckAfterDelivery(source)
        sink = self.config.sink
        # One batch is stored while the next is decoded: the engine and the event loop
        # each sat idle while the other worked (engine busy 62 % of the time, Python 43 %).
        # Inserts run one at a time, in batch order, and so do publishes; a batch is
        # published while the next one is inserted (the store had been the slower lane,
        # and its publishing a fifth of it).
        storing: asyncio.Task[None] | None = None
        flying: set[asyncio.Task[None]] = set()  # the stores begun and not done: at most two
        inserted = asyncio.Event()

        async def finish() -> None:
            nonlocal storing
            if storing is not None:
                done, storing = storing, None
                await done

        async def insert_done() -> None:
            # The store before has inserted its rows, or failed (then its error is raised).
            if storing is None:
                return
            waiting = asyncio.ensure_future(inserted.wait())
            try:
                await asyncio.wait({waiting, storing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
            if storing.done():
                await finish()

        def take() -> asyncio.Future[list[Any]]:
            return asyncio.ensure_future(source.take(sink.batch_max_records, sink.batch_max_age_s,
                                                     sink.batch_max_bytes))

        taking = take()
        try:
            while True:
                events = await taking
                # The next take fills while this one is decoded: its wait for more records
                # (up to batch_max_age_s) had added to every batch's latency.
                taking = take()
                acks.check()
                # Every partition of a take in one batch: the engine's cost per batch is
                # a dozen calls whatever its size, and a batch per partition paid it six
                # times over (8-span records ran at a third of the speed). Records stay in
                # offset order within each partition.
                # The take kept within batch_max_bytes already.
                ordered = [event for group in by_partition(events).values() for event in group]
                store = await self._batch(signal, source, ordered, acks, target, finish)
                await insert_done()
                if store is not None:
                    inserted = asyncio.Event()
                    storing = asyncio.ensure_future(store(storing, inserted))
                    flying.add(storing)
                    storing.add_done_callback(flying.discard)
                if storing is not None and storing.done():
                    await finish()
        finally:
            taking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await taking
            # Unfinished, nothing of them is acknowledged: read again after a restart.
            for task in list(flying):
                task.cancel()
            for task in list(flying):
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _nothing() -> None:
    return None


def _runs(partitions: Sequence[int]) -> dict[int, tuple[int, int]]:
    """The first and last record index of each partition (its records are consecutive)."""
    runs: dict[int, tuple[int, int]] = {}
    for index, partition in enumerate(partitions):
        runs[partition] = (runs.get(partition, (index, index))[0], index)
    return runs


def _in(table: Any, records: set[int]) -> Any:
    return pc.is_in(table.column(RECORD), value_set=pa.array(sorted(records), pa.uint64()))


def _where(record: Any) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def build(config: IngestConfig, deps: StageDeps, engine: Engine, sources: Mapping[Signal, RawSource]) -> IngestStage:
    """The ingest stage reading ``sources`` and publishing with ``deps.app``; its config is
    checked before any record flows. Raises ConfigError naming the field that cannot work."""
    return IngestStage(config.check(), deps, engine, sources)
