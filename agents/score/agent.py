"""The score agent: enriched spans -> anomaly rows and alerts, a thin Faust loop around logic.py."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry

from agents.metrics import WorkerMetrics
from agents.retry import read_with_retry
from agents.score.alertmanager import AlertmanagerForwarder
from agents.score.config import ScoreConfig
from agents.score.features import span_points
from agents.score.logic import ClosedWindows, ScoreEngine
from agents.score.metrics import ScoreMetrics
from agents.score.state import load_state
from agents.score.windows import HeldRecords
from agents.sink.config import SinkConfig
from agents.sink.logic import insert_with_retry
from core.errors import BrokerUnavailableError, WarehouseError
from core.settings import Settings
from schemas.alerts import ALERTS_TABLE, ANOMALIES_TABLE, encode_alert
from sinks.warehouse import Warehouse

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

    def __init__(self, app: faust.App, settings: Settings, warehouse: Warehouse, config: ScoreConfig,
                 metrics: WorkerMetrics | CollectorRegistry) -> None:
        self.app, self.warehouse, self.config = app, warehouse, config.check()
        registry = metrics.registry if isinstance(metrics, WorkerMetrics) else metrics
        self.metrics = ScoreMetrics(registry)
        self.topic_name = settings.topics.enriched_spans
        raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
        self.alerts_topic = app.topic(settings.topics.alerts, **raw)
        self.engine = ScoreEngine(self.config)
        self.restored_windows = 0
        self._retry = SinkConfig(retry_initial_s=config.retry_initial_s, retry_max_s=config.retry_max_s)
        self.forwarder = None
        if config.alertmanager_url:
            self.forwarder = AlertmanagerForwarder(
                config.alertmanager_url, config.alertmanager_retries, config.alertmanager_timeout_s,
                config.retry_initial_s, config.retry_max_s, self.metrics.forward_failures.inc)
        self.agent_names = ["score-spans"]
        app.agent(app.topic(self.topic_name, **raw), name="score-spans")(self._loop())

    async def restore(self) -> None:
        """A fresh engine with the stored state; retried while ClickHouse is unreachable."""
        rows, alerts = await read_with_retry(lambda: asyncio.to_thread(load_state, self.warehouse, self.config),
                                             "score state", self.config.retry_initial_s, self.config.retry_max_s,
                                             lambda: self.app.should_stop)
        self.engine = ScoreEngine(self.config)
        self.restored_windows = self.engine.restore(rows, alerts)
        log.info("score state restored", extra={"windows": self.restored_windows, "open_alerts": len(alerts)})

    def _assigned(self) -> set[int] | None:
        try:
            return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.topic_name}
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
            await insert_with_retry(self.warehouse, tables, None, self._retry, lambda: self.app.should_stop)
        except WarehouseError as exc:
            if exc.retriable:
                raise
            log.error("anomaly rows refused; windows skipped", extra={"error": str(exc),
                                                                     "through": closed.closed_through})
            self.metrics.store_failures.inc()
        for alert in closed.alerts:
            self.metrics.alerts.labels(alert.status).inc()
        self.metrics.windows.inc(len(closed.rows))
        self.metrics.set_scores(closed.scores, closed.evicted)
        if self.forwarder is not None:
            # Open alerts are re-sent every window: Alertmanager resolves silent ones itself.
            resolved = [a for a in closed.alerts if a.status == "resolved"]
            self.forwarder.submit(resolved + self.engine.open_alerts())

    def _loop(self) -> Any:
        stage = self

        async def score(stream: Any) -> None:
            stream = stream.noack()
            await stage.restore()
            held: HeldRecords[Any] = HeldRecords(stage.config.max_held_records)
            try:
                async for event in stream.events():
                    message = event.message
                    try:
                        points = span_points(orjson.loads(event.value)["rows"])
                    except Exception:  # noqa: BLE001 - the sink dead-letters what it cannot read
                        stage.metrics.bad_records.inc()
                        await stream.ack(event)
                        continue
                    late_before, reread_before = stage.engine.late_spans, stage.engine.reread_spans
                    last = stage.engine.add(message.partition, points, time.monotonic(), time.time_ns())
                    stage.metrics.spans.inc(len(points))
                    stage.metrics.late_spans.inc(stage.engine.late_spans - late_before)
                    stage.metrics.reread_spans.inc(stage.engine.reread_spans - reread_before)
                    if last < 0:
                        await stream.ack(event)
                    else:
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


def build_score_stage(app: faust.App, settings: Settings, warehouse: Warehouse, config: ScoreConfig,
                      metrics: WorkerMetrics | CollectorRegistry) -> ScoreStage:
    """The score stage on ``app``; ConfigError naming the field before any record flows."""
    return ScoreStage(app, settings, warehouse, config.check(), metrics)
