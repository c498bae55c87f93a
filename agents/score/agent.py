"""The score agent: enriched spans -> anomaly rows and alerts, a thin Faust loop around logic.py."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from agents.score.alertmanager import AlertmanagerForwarder
from agents.score.config import ScoreConfig
from agents.score.logic import ClosedWindows, ScoreEngine
from agents.score.metrics import ScoreMetrics
from agents.score.state import load_state
from agents.score.windows import HeldRecords
from agents.stage import StageDeps
from core.errors import BrokerUnavailableError, DecodeError, WarehouseError
from schemas.alerts import encode_alert
from schemas.enriched import decode_enriched
from schemas.tables import ALERTS_TABLE, ANOMALIES_TABLE, TRACES_TABLE
from sinks.batches import write_tables
from sinks.retry import retry_warehouse

log = logging.getLogger(__name__)


class ScoreStage:
    """The score agent on the enriched spans topic, publishing to the alerts topic.

    A record is acknowledged once every window it fed is closed and what closing produced
    is delivered: alerts on the topic first (at least once: a crash before the rows are
    stored re-publishes them), then the alert and anomaly rows in ClickHouse. Detectors and
    alert states are rebuilt from those rows when the agent starts (agents/score/state.py).

    One consumer group scores each partition once; with several workers each scores the
    share of traffic on its partitions (spans are keyed by trace, so the share is a sample
    of every service): run the stage in one worker, or with one partition, for exact
    throughput features and one alert stream."""

    def __init__(self, config: ScoreConfig, deps: StageDeps) -> None:
        self.config, self.deps = config, deps
        self.metrics = ScoreMetrics(deps.metrics.registry)
        self.topic_name = deps.topics.enriched_spans
        self.alerts_topic = deps.topic(deps.topics.alerts)
        self.engine = ScoreEngine(config)
        self.restored_windows = 0
        self.forwarder = None
        if config.alertmanager_url:
            self.forwarder = AlertmanagerForwarder(
                config.alertmanager_url, config.alertmanager_retries, config.alertmanager_timeout_s,
                config.retry, self.metrics.forward_failures.inc)
        self.agent_names = ["score-spans"]
        deps.app.agent(deps.topic(self.topic_name), name="score-spans")(self._loop())

    async def restore(self) -> None:
        """A fresh engine with the stored state; retried while ClickHouse is unreachable."""
        rows, alerts = await retry_warehouse(
            lambda: asyncio.to_thread(load_state, self.deps.warehouse, self.config), "score state restore",
            self.config.retry, lambda: self.deps.app.should_stop)
        self.engine = ScoreEngine(self.config)
        self.restored_windows = self.engine.restore(rows, alerts)
        self.metrics.open_alerts.set(len(self.engine.open_alerts()))
        log.info("score state restored", extra={"windows": self.restored_windows, "open_alerts": len(alerts)})

    def _assigned(self) -> set[int] | None:
        try:
            return {tp.partition for tp in self.deps.app.assignor.assigned_actives() if tp.topic == self.topic_name}
        except Exception:  # noqa: BLE001 - no assignment yet (test context): every partition seen counts
            return None

    async def deliver(self, closed: ClosedWindows) -> None:
        """Publish the alerts and store the rows of closed windows; returns once both are done.

        Raises BrokerUnavailableError when an alert was not delivered; a permanent insert
        error is logged and counted (the windows are lost, the stream goes on)."""
        deliveries = [await self.alerts_topic.send(key=a.fingerprint.encode(), value=encode_alert(a))
                      for a in closed.alerts]
        try:
            await asyncio.gather(*deliveries)
        except Exception as exc:
            raise BrokerUnavailableError(f"an alert was not delivered: {exc!r}") from exc
        tables = {ANOMALIES_TABLE: closed.rows, ALERTS_TABLE: [a.to_row() for a in closed.alerts]}
        try:
            await write_tables(self.deps.warehouse, tables, None, self.config.retry,
                               lambda: self.deps.app.should_stop)
        except WarehouseError as exc:
            if exc.retriable:
                raise
            log.exception("anomaly rows refused; windows skipped", extra={"through": closed.closed_through})
            self.metrics.store_failures.inc()
        for alert in closed.alerts:
            self.metrics.count_alert(alert.status, alert.annotations.get("correlation_id", ""))
        self.deps.metrics.stage_out.labels("score", self.deps.topics.alerts).inc(len(closed.alerts))
        self.metrics.open_alerts.set(len(self.engine.open_alerts()))
        self.metrics.windows.inc(len(closed.rows))
        self.metrics.set_scores(closed.scores, closed.evicted)
        if self.forwarder is not None:
            # Open alerts are re-sent every window: Alertmanager resolves silent ones itself.
            resolved = [a for a in closed.alerts if a.status == "resolved"]
            self.forwarder.submit(resolved + self.engine.open_alerts())

    def _spans(self, value: bytes | None) -> pa.Table | None:
        """The otel_traces rows of an enriched record; None, counted, for a value that is not
        one (undecodable, or rows of another table): it is acknowledged, not dead-lettered,
        as the stage only reads what another stage has stored already."""
        try:
            record = decode_enriched(value)
        except DecodeError:
            self.metrics.bad_records.inc()
            return None
        if record.table != TRACES_TABLE:
            self.metrics.bad_records.inc()
            return None
        return record.rows

    def _fold(self, partition: int, rows: pa.Table) -> int:
        engine = self.engine
        read, late, reread, future = engine.read_spans, engine.late_spans, engine.reread_spans, engine.future_spans
        started = time.perf_counter()
        last = engine.add_table(partition, rows, time.monotonic(), time.time_ns())
        self.metrics.fold_seconds.observe(time.perf_counter() - started)
        self.metrics.spans.inc(engine.read_spans - read)
        self.metrics.late_spans.inc(engine.late_spans - late)
        self.metrics.reread_spans.inc(engine.reread_spans - reread)
        self.metrics.future_spans.inc(engine.future_spans - future)
        return last

    def _loop(self) -> Callable[[Any], Any]:
        stage = self

        async def score(stream: Any) -> None:
            stream = stream.noack()
            await stage.restore()
            held: HeldRecords[Any] = HeldRecords(stage.config.max_held_records)
            try:
                async for event in stream.events():
                    stage.deps.metrics.stage_in.labels("score", event.message.topic).inc()
                    rows = stage._spans(event.value)
                    try:
                        last = -1 if rows is None else stage._fold(event.message.partition, rows)
                    except (TypeError, ValueError, OverflowError):  # columns not written by ingest
                        log.exception("score failed", extra={"topic": event.message.topic,
                                                             "partition": event.message.partition,
                                                             "offset": event.message.offset})
                        stage.metrics.bad_records.inc()
                        last = -1
                    if last < 0:
                        await stream.ack(event)
                    else:
                        # A held record is kept only to be acknowledged once its windows are
                        # stored: its bytes (megabytes of Arrow) go now. Holding them, a
                        # 5-minute backlog of 512-span traffic grew the worker to 9 GB.
                        event.value = event.message.value = None
                        held.hold(last, event)
                    for early in held.overflow():
                        stage.metrics.early_acks.inc()
                        await stream.ack(early)
                    closed = stage.engine.close_ready(time.monotonic(), stage._assigned())
                    if closed is not None:
                        await stage.deliver(closed)
                        for done in held.release(closed.closed_through):
                            await stream.ack(done)
                    stage.metrics.held.set(len(held))
            finally:
                if stage.forwarder is not None:
                    await stage.forwarder.close()

        score.__name__ = "score_spans"
        return score


def build(config: ScoreConfig, deps: StageDeps) -> ScoreStage:
    """The score stage on ``deps.app``; its config is checked before any record flows.

    Raises ConfigError naming the field that cannot work."""
    return ScoreStage(config.check(), deps)
