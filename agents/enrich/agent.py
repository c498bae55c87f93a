"""The enrich agents: raw OTLP topics -> enriched topics, a thin Faust loop around logic.py."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from agents.cardinality import CardinalityLimiter
from agents.deadletter import Kind, SourceRecord
from agents.enrich.config import EnrichConfig
from agents.enrich.logic import Decoded, EnrichResult, TraceKey, TraceState, decode_record, enrich_decoded
from agents.enrich.sizing import fit
from agents.enrich.state import TraceStates
from agents.stage import StageDeps
from core.errors import BrokerUnavailableError, DecodeError, WarehouseError
from core.types import Signal
from sinks.retry import retry_warehouse

log = logging.getLogger(__name__)


class AckAfterDelivery:
    """Acknowledge a source record only when what it produced is on the broker.

    Deliveries complete out of order; Faust commits up to the lowest unacknowledged
    offset, so a record whose output was not delivered is read again after a restart.
    A failed delivery is kept and raised on the next call to ``check``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._error: BaseException | None = None

    def track(self, deliveries: list[asyncio.Future[Any]], event: Any) -> None:
        """Acknowledge ``event`` once every one of ``deliveries`` succeeded."""
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                self._error = fut.exception() or asyncio.CancelledError()
                return
            asyncio.ensure_future(self._stream.ack(event))

        asyncio.gather(*deliveries).add_done_callback(done)

    def check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise BrokerUnavailableError(f"an enriched record was not delivered: {error!r}")


class EnrichStage:
    """The three enrich agents and the trace -> correlation states they share."""

    def __init__(self, config: EnrichConfig, deps: StageDeps) -> None:
        self.config, self.deps = config, deps
        # Trace -> correlation state: a bounded cache in front of the trace links stored in
        # ClickHouse (see TraceStates for why not a Faust table).
        self.traces = TraceStates(deps.warehouse, config.trace_cache_traces)
        self.limiter = CardinalityLimiter(config.cardinality_max_values, config.cardinality_window_s,
                                          config.cardinality_max_keys)
        topics = deps.topics
        sources: tuple[tuple[Signal, str, str], ...] = (
            ("traces", topics.spans, topics.enriched_spans),
            ("logs", topics.logs, topics.enriched_logs),
            ("metrics", topics.metrics, topics.enriched_metrics),
        )
        self.agent_names: list[str] = []
        for signal, source, target in sources:
            name = f"enrich-{signal}"
            deps.app.agent(deps.topic(source), name=name)(self._loop(signal, deps.topic(target)))
            self.agent_names.append(name)

    async def _known(self, traces: Iterable[TraceKey]) -> dict[TraceKey, TraceState]:
        """The stored states of ``traces``, from the cache or in one query; retried while
        ClickHouse is unreachable (the records wait, unacknowledged)."""
        wanted = set(traces)
        return await retry_warehouse(lambda: self.traces.known(wanted), "trace state lookup", self.config.retry,
                                     lambda: self.deps.app.should_stop)

    async def _enrich(self, decoded: Decoded) -> EnrichResult:
        known = await self._known(decoded.traces)
        result = enrich_decoded(decoded, known, self.config.correlation, self.limiter, time.time())
        self.traces.remember(result.trace_updates)
        return result

    async def _set_aside(self, stream: Any, event: Any, kind: Kind, reason: str) -> None:
        await self.deps.deadletters.write(SourceRecord.of(event.message), "enrich", kind, reason)
        await stream.ack(event)

    def _loop(self, signal: Signal, target: Any) -> Callable[[Any], Any]:
        stage = self

        async def enrich(stream: Any) -> None:
            acks = AckAfterDelivery(stream)
            config, metrics = stage.config, stage.deps.metrics
            async for events in stream.noack_take(config.batch_max_records, within=config.batch_max_wait_s):
                acks.check()
                batch = []
                for event in events:
                    try:
                        batch.append((event, decode_record(signal, event.value)))
                    except DecodeError as exc:
                        await stage._set_aside(stream, event, "undecodable", str(exc))
                    except Exception as exc:  # noqa: BLE001 - bad input must not stall the partition
                        log.exception("decode failed", extra={"topic": event.message.topic,
                                                              "partition": event.message.partition,
                                                              "offset": event.message.offset})
                        await stage._set_aside(stream, event, "failed", f"decode failed: {exc!r}")
                await stage._known(set().union(*(d.traces for _, d in batch)))  # one query for the batch
                for event, decoded in batch:
                    try:
                        result = await stage._enrich(decoded)
                    except WarehouseError as exc:
                        if exc.retriable:  # still down while stopping: read again after the restart
                            raise
                        await stage._set_aside(stream, event, "failed", f"enrich failed: {exc!r}")
                        continue
                    except Exception as exc:  # noqa: BLE001 - bad input must not stall the partition
                        message = event.message
                        log.exception("enrich failed", extra={"topic": message.topic, "partition": message.partition,
                                                              "offset": message.offset})
                        await stage._set_aside(stream, event, "failed", f"enrich failed: {exc!r}")
                        continue
                    metrics.records.labels(signal).inc()
                    metrics.count_enrich(signal, result.counts)
                    if not any(result.tables.values()):
                        await stream.ack(event)
                        continue
                    try:
                        fitted = fit(signal, result.tables, config.max_record_bytes)
                    except ValueError as exc:
                        await stage._set_aside(stream, event, "too_large", str(exc))
                        continue
                    metrics.truncated_rows.labels(signal).inc(fitted.truncated_rows)
                    acks.track([await target.send(key=event.key, value=value) for value in fitted.values], event)

        enrich.__name__ = f"enrich_{signal}"
        return enrich


def build(config: EnrichConfig, deps: StageDeps) -> EnrichStage:
    """The enrich stage on ``deps.app``; its config is checked before any record flows.

    Raises ConfigError naming the field that cannot work."""
    return EnrichStage(config.check(), deps)
