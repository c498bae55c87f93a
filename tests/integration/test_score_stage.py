"""The score stage on the real broker and chDB: incidents alert once and resolve, steady traffic
stays quiet, and a restart keeps the detectors. Windows run on the spans' event time."""
from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from agents.metrics import WorkerMetrics
from agents.score.agent import ScoreStage, build
from agents.score.config import ScoreConfig
from agents.score.logic import ScoreEngine
from agents.score.state import load_state
from agents.stage import StageDeps, faust_dead_letters
from api.app import create_app as create_api
from core.settings import Settings
from pipeline.app import create_app
from pipeline.topics import ensure_topics, topic_specs
from pipeline.worker import build_worker
from schemas.alerts import decode_alert
from schemas.enriched import encode_enriched
from schemas.tables import ALERTS_TABLE, ANOMALIES_TABLE, LOGS_TABLE, TRACES_TABLE
from sinks.warehouse import Warehouse
from tests.support.builders import (
    T0,
    settings_for,
    span,
    traces_request,
    wait_until,
    with_stage,
)
from tests.support.score_points import span_row, spans_table

pytestmark = pytest.mark.asyncio
CONFIG = ScoreConfig(window_s=10, lateness_s=2.0, idle_partition_s=20.0, history_windows=20, min_history_windows=8,
                     min_spans=10, api_url="http://olly.test:8080")
WINDOW_NS = CONFIG.window_ns
MS = 1_000_000
SPANS_PER_RECORD = 10
Shape = Callable[[int], dict[str, float]]  # window -> {"latency_ms": ..., "error_rate": ...}


def normal(window: int) -> dict[str, float]:
    return {}


def between(first: int, last: int, **change: float) -> Shape:
    return lambda w: dict(change) if first <= w <= last else {}


def record(rows: list[dict[str, Any]]) -> bytes:
    """One enriched record (version 3) of otel_traces rows."""
    (value,) = encode_enriched("traces", TRACES_TABLE, spans_table(rows), 1 << 20).values
    return value


def records(windows: range, plan: dict[str, Shape], seed: int = 7, spans: int = 40) -> list[tuple[str, bytes]]:
    """Enriched span records, in event-time order: per window and service ``spans`` spans in
    records of SPANS_PER_RECORD, each record one trace (used as the key here)."""
    rng = random.Random(seed)
    out = []
    for w in windows:
        for service, shape in plan.items():
            change = shape(w)
            for r in range(spans // SPANS_PER_RECORD):
                trace = f"{rng.getrandbits(128):032x}"
                rows = []
                for i in range(SPANS_PER_RECORD):
                    n = r * SPANS_PER_RECORD + i
                    at = T0 + w * WINDOW_NS + n * WINDOW_NS // spans
                    error = rng.random() < change.get("error_rate", 0.01)
                    duration = int(rng.lognormvariate(0, 0.25) * change.get("latency_ms", 40.0) * MS)
                    rows.append(span_row(at, service, ("GET /items", "POST /orders")[n % 2], duration, error,
                                         f"req-{service}-{w}-{n}", trace, f"{n + 1:016x}"))
                out.append((trace, record(rows)))
    return out


@pytest_asyncio.fixture
async def settings(kafka_bootstrap: str, unique: str, tmp_path: Path, warehouse: Warehouse) -> Settings:
    s = settings_for(unique, tmp_path, warehouse.database)
    await ensure_topics(kafka_bootstrap, topic_specs(s.topics))
    (s.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    return s


@pytest_asyncio.fixture
async def produce(kafka_bootstrap: str, settings: Settings) -> AsyncIterator[Callable[[list[tuple[str, bytes]]], Any]]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()

    async def send(batch: list[tuple[str, bytes]]) -> None:
        futures = [await producer.send(settings.topics.enriched_spans, value, key=key.encode()) for key, value in batch]
        await asyncio.gather(*futures)

    try:
        yield send
    finally:
        await producer.stop()


class RunningStage:
    def __init__(self, settings: Settings, bootstrap: str, warehouse: Warehouse, app_id: str,
                 config: ScoreConfig = CONFIG) -> None:
        self.app = create_app(settings, bootstrap, app_id)
        metrics = WorkerMetrics(CollectorRegistry())
        deps = StageDeps(self.app, settings.topics, warehouse, metrics,
                         faust_dead_letters(self.app, settings.topics.deadletter, metrics))
        self.stage = build(config, deps)

    async def __aenter__(self) -> ScoreStage:
        await self.app.start()
        return self.stage

    async def __aexit__(self, *exc: Any) -> None:
        await self.app.stop()


def stored_through(wh: Warehouse) -> int:
    """The newest stored window index (-1: none)."""
    row = wh.query(f"SELECT count() AS n, toUnixTimestamp64Nano(max(Timestamp)) AS ts "
                   f"FROM {wh.database}.{ANOMALIES_TABLE}")[0]
    return (int(row["ts"]) - T0) // WINDOW_NS if int(row["n"]) else -1


async def wait_stored(wh: Warehouse, window: int) -> None:
    await wait_until(lambda: stored_through(wh) >= window, 60, f"window {window} stored")


async def topic_alerts(bootstrap: str, topic: str) -> list[Any]:
    """Every alert on the topic so far."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        out = []
        batch = await consumer.getmany(timeout_ms=1000)
        while batch:
            out += [(r.key.decode(), decode_alert(r.value)) for records_ in batch.values() for r in records_]
            batch = await consumer.getmany(timeout_ms=500)
        return out
    finally:
        await consumer.stop()


def window_of(ns: int) -> int:
    return (ns - T0) // WINDOW_NS


async def test_a_latency_step_and_an_error_burst_give_one_alert_each_and_resolve(
        settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str, produce: Any) -> None:
    plan = {"checkout": between(12, 17, latency_ms=300.0), "payments": between(12, 17, error_rate=0.5),
            "catalog": normal}
    # Records the stage cannot score are counted and acknowledged, and the others go on.
    logs = encode_enriched("logs", LOGS_TABLE, pa.table({"Timestamp": pa.array([T0], pa.timestamp("ns"))}), 1 << 20)
    columns = encode_enriched("traces", TRACES_TABLE, pa.table({"Timestamp": ["later"], "ServiceName": ["checkout"]}),
                              1 << 20)
    unreadable = [("json", b'{"v": 2, "signal": "traces", "tables": {}}'), ("logs", logs.values[0]),
                  ("columns", columns.values[0])]
    await produce(unreadable + records(range(32), plan))
    async with RunningStage(settings, kafka_bootstrap, warehouse, unique) as stage:
        await wait_stored(warehouse, 30)
        gauge = list(stage.metrics.score.collect())[0].samples
        bad = list(stage.metrics.bad_records.collect())[0].samples[0].value
    alerts = await topic_alerts(kafka_bootstrap, settings.topics.alerts)
    seen = [(a.labels["service"], a.status, window_of(a.updated_at_ns)) for _, a in alerts]
    print(f"alerts: {seen}")
    assert sorted((s, st) for s, st, _ in seen) == [("checkout", "firing"), ("checkout", "resolved"),
                                                   ("payments", "firing"), ("payments", "resolved")]
    for _, status, window in seen:
        assert (12 < window <= 12 + CONFIG.fire_windows) if status == "firing" else (18 < window <= 22), seen
    by_key = {(a.labels["service"], a.status): (key, a) for key, a in alerts}
    key, fired = by_key[("checkout", "firing")]
    assert key == fired.fingerprint == by_key[("checkout", "resolved")][1].fingerprint
    assert fired.annotations["feature"].startswith("latency")
    assert fired.annotations["correlation_url"] == f"http://olly.test:8080/api/v1/correlate/{fired.annotations['correlation_id']}"
    assert by_key[("payments", "firing")][1].annotations["feature"] == "error_rate"
    # The exemplar is a span of the incident: of the slow service, or a failed one.
    assert 12 <= int(fired.annotations["correlation_id"].split("-")[2]) <= 17
    stored = warehouse.query(f"SELECT ServiceName, Status, Fingerprint FROM {warehouse.database}.{ALERTS_TABLE} FINAL "
                             "ORDER BY ServiceName, Status")
    assert [(r["ServiceName"], r["Status"]) for r in stored] == [
        ("checkout", "firing"), ("checkout", "resolved"), ("payments", "firing"), ("payments", "resolved")]
    checkout = next(g for g in gauge if g.labels == {"tenant": "", "service": "checkout", "operation": ""})
    assert checkout.value < CONFIG.threshold  # recovered by the last closed window
    assert bad == len(unreadable)


async def test_steady_traffic_over_many_windows_raises_no_alert(
        settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str, produce: Any) -> None:
    windows = 150
    plan = {"checkout": normal, "payments": between(0, windows, error_rate=0.05), "catalog": normal}
    await produce(records(range(windows), plan, seed=11))
    async with RunningStage(settings, kafka_bootstrap, warehouse, unique):
        await wait_stored(warehouse, windows - 2)
    alerts = await topic_alerts(kafka_bootstrap, settings.topics.alerts)
    scored = warehouse.query(f"SELECT count() AS n, max(Score) AS top FROM {warehouse.database}.{ANOMALIES_TABLE} "
                             "FINAL WHERE Warming = 0")[0]
    print(f"steady run: {windows - 1} windows x 3 services, {scored['n']} key windows scored, "
          f"top score {scored['top']:.3f}, false alerts: {len(alerts)}")
    assert alerts == []


async def test_a_restart_keeps_the_detectors(settings: Settings, kafka_bootstrap: str, warehouse: Warehouse,
                                             unique: str, produce: Any) -> None:
    plan = {"checkout": between(16, 19, latency_ms=300.0), "catalog": normal}
    batch = records(range(26), plan, seed=3)
    per_window = len(batch) // 26
    await produce(batch[:15 * per_window])
    async with RunningStage(settings, kafka_bootstrap, warehouse, unique) as before:
        await wait_stored(warehouse, 13)
        live = {k: (list(d.history), d.frozen) for k, d in before.engine.detectors.items()}
    engine = ScoreEngine(CONFIG)
    assert engine.restore(*load_state(warehouse, CONFIG)) == 14
    assert {k: (list(d.history), d.frozen) for k, d in engine.detectors.items()} == live
    await produce(batch[15 * per_window:])
    async with RunningStage(settings, kafka_bootstrap, warehouse, unique) as after:
        await wait_stored(warehouse, 24)
        assert after.restored_windows == 14
    alerts = [a for _, a in await topic_alerts(kafka_bootstrap, settings.topics.alerts)]
    # Without the restored baseline the detector would still be warming up at window 16.
    assert [(a.labels["service"], a.status, window_of(a.updated_at_ns)) for a in alerts][:1] == \
        [("checkout", "firing", 18)]
    assert [a.status for a in alerts if a.labels["service"] == "checkout"] == ["firing", "resolved"]
    assert not [a for a in alerts if a.labels["service"] == "catalog"]


async def test_the_stage_runs_in_the_worker_next_to_enrich_and_sink(
        settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str) -> None:
    worker = build_worker(with_stage(settings, score=CONFIG), kafka_bootstrap, warehouse, app_id=unique)
    stage = worker.score
    assert stage is not None
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    await worker.start()
    try:
        for w in range(5):
            for r in range(5):
                trace = f"{w * 5 + r + 1:032x}"
                spans = [span(trace, f"{i + 1:016x}", name="GET /", start_ns=T0 + w * WINDOW_NS + (r * 5 + i) * 10**8)
                         for i in range(5)]
                await producer.send_and_wait(settings.topics.spans, traces_request("checkout", spans), trace.encode())
        # The last window's spans end 2.4 s in: the watermark (minus 2 s lateness) closes 0-2.
        await wait_stored(warehouse, 2)
        await wait_until(lambda: warehouse.query(f"SELECT count() AS n FROM {warehouse.database}.otel_traces")[0]["n"]
                         == 125, 30, "every span stored by the sink")
    finally:
        await worker.stop()
        await producer.stop()
    rows = warehouse.query(f"SELECT Spans, SpanName FROM {warehouse.database}.{ANOMALIES_TABLE} FINAL "
                           "WHERE SpanName = '' ORDER BY Timestamp")
    assert [r["Spans"] for r in rows] == [25, 25, 25]
    assert stage.agent_names == ["score-spans"]
    assert worker.metrics.registry.get_sample_value("ollystack_score_spans_total") == 125


async def test_a_rising_latency_is_predicted_on_the_topic_in_the_table_and_through_the_api(
        settings: Settings, kafka_bootstrap: str, warehouse: Warehouse, unique: str, produce: Any) -> None:
    config = CONFIG.replace(predict_rules=("latency_p95_ms>400",), predict_every_windows=2,
                            predict_history_windows=12, predict_horizon_windows=20)
    plan = {"checkout": lambda w: {"latency_ms": 40.0 + 12.0 * w}, "catalog": normal}
    await produce(records(range(24), plan))
    async with RunningStage(settings, kafka_bootstrap, warehouse, unique, config):
        await wait_stored(warehouse, 22)
    predicted = [a for _, a in await topic_alerts(kafka_bootstrap, settings.topics.alerts)
                 if a.labels.get("predicted") == "true"]
    assert predicted, "no predicted alert was published"
    first = predicted[0]
    assert (first.labels["service"], first.labels["metric"], first.status) == ("checkout", "latency_p95_ms", "firing")
    p95 = warehouse.query(f"SELECT toUnixTimestamp64Nano(Timestamp) AS ts, P95Ms FROM {warehouse.database}."
                          f"{ANOMALIES_TABLE} FINAL WHERE ServiceName = 'checkout' AND SpanName = '' ORDER BY ts")
    crossed = next(window_of(int(r["ts"])) for r in p95 if r["P95Ms"] > 400)
    assert window_of(first.updated_at_ns) < crossed  # ahead of the crossing
    stored = warehouse.query(f"SELECT Status, Predicted FROM {warehouse.database}.{ALERTS_TABLE} FINAL "
                             "WHERE AlertName = 'OllyStackPredictedBreach'")
    assert stored and {r["Predicted"] for r in stored} == {1}
    app = create_api(settings, warehouse)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        listed = (await client.get("/api/v1/alerts", params={"predicted": "true"})).json()["alerts"]
        observed = (await client.get("/api/v1/alerts", params={"predicted": "false"})).json()["alerts"]
    assert first.fingerprint in {a["fingerprint"] for a in listed}
    assert all(a["labels"].get("predicted") != "true" for a in observed)
