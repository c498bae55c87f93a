"""kill -9 the worker mid-stream, restart it: every span is in query results exactly once."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import TopicPartition

from agents.ingest.source import ingest_group
from pipeline.topics import ensure_topics, topic_specs
from tests.support.builders import settings_for, span, traces_request

REPO = Path(__file__).resolve().parents[2]
REQUESTS, SPANS_PER_REQUEST = 1000, 10


def worker_env(settings_dir: Path, bootstrap: str, unique: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLYSTACK_")}
    names = dict(SPANS="raw-spans", LOGS="raw-logs", METRICS="raw-metrics", ENRICHED_SPANS="en-spans",
                 ENRICHED_LOGS="en-logs", ENRICHED_METRICS="en-metrics", ALERTS="alerts", DEADLETTER="dead")
    env.update({f"OLLYSTACK_TOPICS_{k}": f"{unique}-{v}" for k, v in names.items()})
    env.update(OLLYSTACK_TOPICS_PARTITIONS="2", OLLYSTACK_KAFKA_BOOTSTRAP=bootstrap,
               OLLYSTACK_DATA_DIR=str(settings_dir), OLLYSTACK_SINK_BATCH_MAX_ROWS="200",
               OLLYSTACK_SINK_BATCH_MAX_AGE_S="0.2", OLLYSTACK_LOG_LEVEL="info",
               # Scoring holds records of open windows; this test follows the sink's offsets.
               OLLYSTACK_SCORE_ENABLED="false", OLLYSTACK_LOG_FORMAT="text",
               PYTHONPATH=str(REPO))
    return env


async def committed(bootstrap: str, group: str, topic: str) -> int:
    """Offsets ``group`` committed on ``topic`` (0 before the group exists), after a short pause
    so that callers polling it do not hammer the broker."""
    await asyncio.sleep(0.2)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in range(2)])
    except GroupCoordinatorNotAvailableError:
        return 0
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for meta in offsets.values())


async def produced(bootstrap: str, topic: str) -> int:
    """Records on ``topic`` so far, polled every 50 ms."""
    await asyncio.sleep(0.05)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(2)])
    finally:
        await consumer.stop()
    return sum(ends.values())


def count_rows(data_dir: Path) -> dict[str, int]:
    """Counts read by a separate process: chDB allows one data folder per process."""
    code = ("import json; from sinks.backend import open_warehouse; from core.settings import ClickHouseSettings; "
            "from pathlib import Path; "
            f"w = open_warehouse(ClickHouseSettings(), Path({str(data_dir)!r})); "
            "print(json.dumps(w.query('SELECT (SELECT count() FROM default.otel_traces FINAL) AS final, "
            "(SELECT uniqExact(TraceId, SpanId) FROM default.otel_traces) AS distinct_spans')[0]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_kill_9_mid_stream_then_restart_stores_every_span_once(
        kafka_bootstrap: str, unique: str, tmp_path: Path) -> None:
    settings = settings_for(unique, tmp_path, "default")
    await ensure_topics(kafka_bootstrap, topic_specs(settings.topics))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for i in range(REQUESTS):
            trace = f"{i + 1:032x}"
            body = traces_request("svc", [span(trace, f"{j + 1:016x}") for j in range(SPANS_PER_REQUEST)])
            await producer.send(settings.topics.spans, body, key=trace.encode())
        await producer.flush()
    finally:
        await producer.stop()
    env = worker_env(tmp_path, kafka_bootstrap, unique)
    enriched = settings.topics.enriched_spans

    worker = start_worker(env, tmp_path / 'worker.log')
    try:
        # Kill as soon as enriched records flow: inserts, publishing and commits are in flight.
        end = time.monotonic() + 120
        while time.monotonic() < end and await produced(kafka_bootstrap, enriched) == 0:
            assert worker.poll() is None, "the worker exited early"
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        worker = start_worker(env, tmp_path / 'worker.log')
        end = time.monotonic() + 180
        while time.monotonic() < end:
            raw = await committed(kafka_bootstrap, ingest_group("ollystack", "traces"), settings.topics.spans)
            if raw == REQUESTS:
                break
        assert raw == REQUESTS, f"raw offsets committed: {raw}; log: {(tmp_path / 'worker.log').read_text()[-3000:]}"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    counts = count_rows(tmp_path)
    assert counts == {"final": REQUESTS * SPANS_PER_REQUEST, "distinct_spans": REQUESTS * SPANS_PER_REQUEST}
