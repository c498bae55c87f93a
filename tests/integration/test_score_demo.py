"""`ollystack demo` traffic through the real SDK, gateway, broker, worker and chDB: a latency step
on one service and an error burst on another each fire one alert, on that service only (its
callers are explained by it), and resolve after recovery; steady traffic fires none; a worker
restart keeps the detectors, so the faults are caught without a new warm-up."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from agents.score.config import ScoreConfig
from core.settings import OtlpSettings, Settings
from pipeline.alerts_tail import alert_stream
from pipeline.demo import DemoResult, Faults, run_demo
from pipeline.gateway.service import build_gateway
from pipeline.topics import ensure_topics, topic_specs
from pipeline.worker import Worker, build_worker
from schemas.alerts import Alert
from sinks.warehouse import Warehouse
from tests.support.builders import settings_for, wait_until, with_stage

pytestmark = pytest.mark.asyncio
# Short windows so the test takes a minute; the demo's 20 flows/s give every service about
# 60 spans a window. Six learned windows make a baseline.
CONFIG = ScoreConfig(window_s=3, lateness_s=3.0, idle_partition_s=10.0, history_windows=20, min_history_windows=6,
                     min_spans=10, api_url="http://olly.test:8080")
RATE = 20.0
SLOW, FAILING = "payment-service", "inventory-service"
INCIDENT = Faults(slow=frozenset({SLOW}), fail={FAILING: 0.6})


class AlertFeed:
    """Every alert published on the topic, as it arrives."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.alerts: list[Alert] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AlertFeed:
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for alert in alert_stream(self.bootstrap, self.topic, from_beginning=True):
            self.alerts.append(alert)

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def of(self, service: str, status: str) -> list[Alert]:
        return [a for a in self.alerts if a.labels["service"] == service and a.status == status]

    def summary(self) -> list[tuple[str, str, str]]:
        return [(a.labels["service"], a.status, a.annotations.get("summary", "")) for a in self.alerts]


class Demo:
    """The demo in a thread; ``faults`` can be changed while it runs."""

    def __init__(self, grpc_port: int, http_port: int) -> None:
        self.faults, self.stop = Faults(), threading.Event()
        self._run = asyncio.create_task(asyncio.to_thread(
            run_demo, f"http://127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}", "grpc", RATE, None,
            lambda _: self.faults, seed=5, stop=self.stop))

    def switch(self, faults: Faults) -> int:
        """Apply ``faults`` to the flows from now on; returns the time (ns) they start."""
        self.faults = faults
        return time.time_ns()

    async def finish(self) -> DemoResult:
        self.stop.set()
        return await self._run


@pytest_asyncio.fixture
async def pipeline(kafka_bootstrap: str, unique: str, tmp_path: Path,
                   warehouse: Warehouse) -> AsyncIterator[tuple[Settings, Demo, AlertFeed, list[Worker]]]:
    settings = settings_for(unique, tmp_path, warehouse.database).model_copy(
        update={"otlp": OtlpSettings(grpc_port=0, http_port=0)})
    await ensure_topics(kafka_bootstrap, topic_specs(settings.topics))
    gateway = build_gateway(settings, kafka_bootstrap)
    workers = [build_worker(with_stage(settings, score=CONFIG), kafka_bootstrap, warehouse, app_id=unique)]
    await gateway.start()
    await workers[0].start()
    demo = Demo(gateway.grpc_port, gateway.http_port)
    try:
        async with AlertFeed(kafka_bootstrap, settings.topics.alerts) as feed:
            yield settings, demo, feed, workers
    finally:
        result = await demo.finish()
        await workers[-1].stop()
        await gateway.stop()
        assert result.spans_not_sent == 0


def windows(ns: int) -> float:
    return ns / CONFIG.window_ns


@pytest.mark.timeout(480)  # about 100 s idle: 14 learned windows of 3 s, a restart, the incident, the recovery
async def test_demo_faults_alert_on_their_service_once_and_a_restart_keeps_the_model(
        pipeline: tuple[Settings, Demo, AlertFeed, list[Worker]], kafka_bootstrap: str, warehouse: Warehouse,
        unique: str) -> None:
    settings, demo, feed, workers = pipeline
    key = ("", SLOW, "")

    def learned(worker: Worker) -> int:
        assert worker.score is not None
        detector = worker.score.engine.detectors.get(key)
        return len(detector.history) if detector else 0

    # Steady traffic: the baseline, then windows scored against it; then a restart.
    def progress() -> str:
        assert workers[0].score is not None
        engine = workers[0].score.engine
        detector = engine.detectors.get(key)
        return (f"a learned baseline (closed through {engine.closed_through}; {SLOW}: "
                f"{learned(workers[0])} learned, {len(detector.frozen) if detector else 0} frozen)")

    await wait_until(lambda: learned(workers[0]) >= CONFIG.min_history_windows + 8, 120, progress)
    await workers[0].stop()
    workers.append(build_worker(with_stage(settings, score=CONFIG), kafka_bootstrap, warehouse, app_id=unique))
    await workers[1].start()
    await wait_until(lambda: workers[1].score and workers[1].score.restored_windows, 60, "the restored state")
    before = workers[0].score.engine  # type: ignore[union-attr]
    after = workers[1].score.engine  # type: ignore[union-attr]
    assert learned(workers[1]) >= CONFIG.min_history_windows  # no new warm-up needed
    assert after.graph.edges[""].keys() >= {("api-gateway", "order-service"), ("order-service", SLOW),
                                            ("api-gateway", FAILING)}
    assert list(after.detectors[key].history)[:learned(workers[0])] == list(before.detectors[key].history)

    # The incident: payment-service slow and inventory-service failing, at once. The waits
    # follow event time (the windows the stage closed), not the wall clock: on a busy machine
    # the pipeline runs behind, and the rule under test is counted in windows.
    def closed_past(at_ns: int, more_windows: int) -> bool:
        return after.closed_through >= at_ns // CONFIG.window_ns + more_windows

    started = demo.switch(INCIDENT)
    await wait_until(lambda: closed_past(started, CONFIG.fire_windows + 2), 150, "the incident's windows closed")
    await wait_until(lambda: feed.of(SLOW, "firing") and feed.of(FAILING, "firing"), 30,
                     lambda: f"both alerts firing (seen: {feed.summary()})")
    recovered = demo.switch(Faults())
    await wait_until(lambda: closed_past(recovered, CONFIG.resolve_windows + 2), 150, "the recovery's windows closed")
    def latest(service: str) -> list[tuple[str, str, float, str]]:
        return [(r["start"], r["SpanName"], r["AlertScore"], r["Detail"]) for r in warehouse.query(
            f"SELECT toString(Timestamp) AS start, SpanName, AlertScore, Detail FROM "
            f"{warehouse.database}.ollystack_anomalies FINAL WHERE ServiceName = {{s:String}} AND SpanName = '' "
            "ORDER BY Timestamp DESC LIMIT 6", {"s": service})]

    await wait_until(lambda: feed.of(SLOW, "resolved") and feed.of(FAILING, "resolved"), 30,
                     lambda: f"both resolved (seen: {feed.summary()}; latest windows: {latest(SLOW)}, "
                             f"{latest(FAILING)})")

    seen = [(a.labels["service"], a.status, a.annotations["feature"],
             round(windows(a.updated_at_ns - (started if a.status == "firing" else recovered)), 1))
            for a in feed.alerts]
    false_alerts = [s for s in seen if s[0] not in (SLOW, FAILING)]
    steady = warehouse.query(
        f"SELECT count() AS n FROM {warehouse.database}.ollystack_anomalies FINAL WHERE SpanName = '' "
        "AND Warming = 0 AND Timestamp < fromUnixTimestamp64Nano({t:Int64})",
        {"t": started - started % CONFIG.window_ns})[0]["n"]
    print(json.dumps({"steady_service_windows_scored": steady, "false_alerts": len(false_alerts), "alerts": seen}))
    assert sorted((s, st) for s, st, _, _ in seen) == [(FAILING, "firing"), (FAILING, "resolved"),
                                                       (SLOW, "firing"), (SLOW, "resolved")]
    for service, status, feature, delay in seen:
        assert feature.startswith("latency") if service == SLOW else feature == "error_rate"
        # Fires after fire_windows anomalous windows, resolves after resolve_windows normal
        # ones; the window the change falls in is partial (+1), and one noisy window is
        # allowed for (+1).
        limit = (CONFIG.fire_windows if status == "firing" else CONFIG.resolve_windows) + 2
        assert 0 < delay <= limit, seen
    fired = feed.of(SLOW, "firing")[0]
    assert fired.annotations["impact"].endswith("api-gateway, order-service")
    assert fired.annotations["correlation_id"] and fired.annotations["correlation_url"].startswith("http://olly.test:8080/")
    # The callers scored the incident too, and the rows say which service explains them.
    explained = warehouse.query(
        f"SELECT DISTINCT toString(ServiceName) AS service FROM {warehouse.database}.ollystack_anomalies FINAL "
        "WHERE SpanName = '' AND notEmpty(AlertInhibitedBy) AND AlertScore >= {t:Float64}", {"t": CONFIG.threshold})
    assert {r["service"] for r in explained} >= {"api-gateway", "order-service"}
