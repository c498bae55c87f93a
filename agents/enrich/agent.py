"""The enrich agents: raw OTLP topics -> enriched topics, a thin Faust loop around logic.py."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from agents.cardinality import CardinalityLimiter
from agents.deadletter import send_dead_letter
from agents.enrich.config import EnrichConfig
from agents.enrich.logic import EnrichResult
from agents.enrich.records import Decoded, Signal, decode_record, enrich_decoded
from agents.enrich.state import TRACE_CACHE_TRACES, TraceStates
from agents.metrics import WorkerMetrics
from agents.retry import read_with_retry
from core.errors import BrokerUnavailableError, DecodeError
from core.settings import Settings
from schemas.enriched import encode_enriched
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


class AckAfterDelivery:
    """Acknowledge a source record only when what it produced is on the broker.

    Deliveries complete out of order; Faust commits up to the lowest unacknowledged
    offset, so a record whose output was not delivered is read again after a restart.
    A failed delivery is kept and raised on the next call to ``check``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._error: BaseException | None = None

    def track(self, delivery: asyncio.Future[Any], event: Any) -> None:
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                self._error = fut.exception() or asyncio.CancelledError()
                return
            asyncio.ensure_future(self._stream.ack(event))

        delivery.add_done_callback(done)

    def check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise BrokerUnavailableError(f"an enriched record was not delivered: {error!r}")


class EnrichStage:
    """The three enrich agents and the trace -> correlation states they share."""

    def __init__(self, app: faust.App, settings: Settings, config: EnrichConfig, metrics: WorkerMetrics,
                 warehouse: Warehouse) -> None:
        self.app, self.settings, self.config, self.metrics = app, settings, config.check(), metrics
        topics = settings.topics
        raw = dict(key_serializer="raw", value_serializer="raw")
        self.deadletter = app.topic(topics.deadletter, **raw)
        # Trace -> correlation state: a bounded cache in front of the trace links stored in
        # ClickHouse (see TraceStates for why not a Faust table).
        self.traces = TraceStates(warehouse, TRACE_CACHE_TRACES)
        self.limiter = CardinalityLimiter(config.cardinality_max_values, config.cardinality_window_s)
        self.agent_names = []
        sources: tuple[tuple[Signal, str, str], ...] = (
            ("spans", topics.spans, topics.enriched_spans),
            ("logs", topics.logs, topics.enriched_logs),
            ("metrics", topics.metrics, topics.enriched_metrics),
        )
        for signal, source, target in sources:
            name = f"enrich-{signal}"
            app.agent(app.topic(source, **raw), name=name)(self._loop(signal, app.topic(target, **raw)))
            self.agent_names.append(name)

    async def _prefetch(self, decoded: list[Decoded]) -> None:
        """Load the stored states of every trace of a batch not cached yet, in one query;
        retried while ClickHouse is unreachable (the records wait, unacknowledged)."""
        traces = set().union(*(d.traces for d in decoded))
        await read_with_retry(lambda: self.traces.known(traces), "trace states", self.config.retry_initial_s,
                              self.config.retry_max_s, lambda: self.app.should_stop)

    async def _enrich(self, decoded: Decoded) -> EnrichResult:
        known = await self.traces.known(decoded.traces)
        result = enrich_decoded(decoded, known, self.config, self.limiter, time.time())
        self.traces.remember(result.trace_updates)
        return result

    def _loop(self, signal: Signal, target: Any) -> Any:
        stage = self

        async def dead_letter(acks: AckAfterDelivery, event: Any, reason: str) -> None:
            message = event.message
            delivery = await send_dead_letter(stage.deadletter, message, "enrich", reason)
            stage.metrics.deadletters.labels(message.topic, "enrich").inc()
            acks.track(delivery, event)

        async def enrich(stream: Any) -> None:
            acks = AckAfterDelivery(stream)
            config = stage.config
            async for events in stream.noack_take(config.batch_max_records, within=config.batch_max_wait_s):
                acks.check()
                batch = []
                for event in events:
                    try:
                        batch.append((event, decode_record(signal, event.value)))
                    except DecodeError as exc:
                        await dead_letter(acks, event, str(exc))
                    except Exception as exc:  # noqa: BLE001 - bad input must not stall the partition
                        log.exception("decode failed", extra={"topic": event.message.topic,
                                                              "offset": event.message.offset})
                        await dead_letter(acks, event, f"decode failed: {exc!r}")
                await stage._prefetch([d for _, d in batch])
                for event, decoded in batch:
                    try:
                        result = await stage._enrich(decoded)
                    except Exception as exc:  # noqa: BLE001 - bad input must not stall the partition
                        message = event.message
                        log.exception("enrich failed", extra={"topic": message.topic, "partition": message.partition,
                                                              "offset": message.offset})
                        await dead_letter(acks, event, f"enrich failed: {exc!r}")
                        continue
                    stage.metrics.records.labels(signal).inc()
                    stage.metrics.count_enrich(signal, result.counts)
                    if not result.rows and not result.links:
                        await stream.ack(event)
                        continue
                    delivery = await target.send(key=event.key, value=encode_enriched(signal, result.rows, result.links))  # type: ignore[arg-type]
                    acks.track(delivery, event)

        enrich.__name__ = f"enrich_{signal}"
        return enrich
