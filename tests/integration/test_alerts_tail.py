"""`alerts tail` on the real broker: alerts print as JSON lines or table lines; junk is reported."""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.alerts_tail import alerts_tail_main, tail_alerts
from pipeline.topics import ensure_topics, topic_specs
from schemas.alerts import Alert, encode_alert
from tests.support.builders import settings_for

FIRING = Alert({"alertname": "OllyStackAnomaly", "service": "checkout", "operation": "POST /pay",
                "severity": "critical"}, {"summary": "slow", "score": "0.93", "correlation_id": "req-1"},
               1_763_856_000_000_000_000, "http://olly/api/v1/anomalies", updated_at_ns=1_763_856_020_000_000_000)
RESOLVED = FIRING.resolve(1_763_856_060_000_000_000, 1_763_856_090_000_000_000)


async def fill(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in (encode_alert(FIRING), b"not an alert", encode_alert(RESOLVED)):
            await producer.send_and_wait(topic, value, key=FIRING.fingerprint.encode())
    finally:
        await producer.stop()


def test_tail_prints_alerts_from_the_beginning(kafka_bootstrap: str, unique: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(unique, tmp_path, "default")
    asyncio.run(ensure_topics(kafka_bootstrap, topic_specs(settings.topics)))
    asyncio.run(fill(kafka_bootstrap, settings.topics.alerts))
    assert alerts_tail_main(settings, kafka_bootstrap, from_beginning=True, max_alerts=2) == 0
    captured = capsys.readouterr()
    lines = [orjson.loads(line) for line in captured.out.splitlines()]
    assert [(a["status"], a["fingerprint"]) for a in lines] == [("firing", FIRING.fingerprint),
                                                                ("resolved", FIRING.fingerprint)]
    assert "skipped" in captured.err and "not an alert" in captured.err
    table = io.StringIO()
    printed = asyncio.run(tail_alerts(kafka_bootstrap, settings.topics.alerts, from_beginning=True, max_alerts=2,
                                      fmt="table", out=table, err=io.StringIO()))
    first, second = table.getvalue().splitlines()
    assert printed == 2
    assert first.startswith("2025-11-23T00:00:20.000Z FIRING   critical checkout POST /pay score=0.93 "
                            "correlation_id=req-1")
    assert second.startswith("2025-11-23T00:01:00.000Z RESOLVED")
