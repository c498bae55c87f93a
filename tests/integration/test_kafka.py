"""The real broker: topics, aiokafka produce and consume, a Faust agent end to end."""
from __future__ import annotations

import asyncio
import time
from typing import get_args

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from core.settings import Compression, Settings, TopicSettings
from pipeline.app import create_app
from pipeline.topics import TopicSpec, describe_topics, ensure_topics, topic_specs

pytestmark = pytest.mark.asyncio


async def consume(bootstrap: str, topic: str, count: int, deadline_s: float = 30.0) -> list[bytes]:
    """Read ``count`` values from the start of ``topic``, failing after ``deadline_s``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    got: list[bytes] = []
    try:
        end = time.monotonic() + deadline_s
        while len(got) < count and time.monotonic() < end:
            batch = await consumer.getmany(timeout_ms=500)
            got += [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    assert len(got) == count, f"{topic}: {len(got)} of {count} records within {deadline_s}s"
    return got


async def test_topics_are_created_once_with_the_configured_partitions(kafka_bootstrap: str, unique: str) -> None:
    # Several rounds: a second call right after the first must see what the first created
    # (it once tried to create a topic again before the broker's metadata had it).
    for round_ in range(4):
        prefix = f"{unique}r{round_}"
        # Kafka treats '.' and '_' alike when it checks names for collisions: keep them apart.
        topics = TopicSettings(spans=f"{prefix}-raw-spans", logs=f"{prefix}-raw-logs", metrics=f"{prefix}-raw-metrics",
                               enriched_spans=f"{prefix}.spans", enriched_logs=f"{prefix}.logs",
                               enriched_metrics=f"{prefix}.metrics", alerts=f"{prefix}.alerts",
                               deadletter=f"{prefix}.deadletter", partitions=3)
        created = await ensure_topics(kafka_bootstrap, topic_specs(topics))
        assert len(created) == 8
        assert await ensure_topics(kafka_bootstrap, topic_specs(topics)) == []
        described = await describe_topics(kafka_bootstrap)
        assert described[f"{prefix}-raw-spans"] == 3 and described[f"{prefix}.alerts"] == 1


@pytest.mark.parametrize("compression", [c for c in get_args(Compression) if c != "none"])
async def test_produce_with_acks_all_and_consume(kafka_bootstrap: str, unique: str, compression: str) -> None:
    # Every codec OLLYSTACK_KAFKA_COMPRESSION offers, through the real broker and back.
    await ensure_topics(kafka_bootstrap, [TopicSpec(unique, 2, 1, "test")])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True,
                                compression_type=compression)
    await producer.start()
    try:
        sent = [f"value-{i}".encode() for i in range(50)]
        results = await asyncio.gather(*[producer.send_and_wait(unique, v, key=v[-1:]) for v in sent])
        assert all(r.offset >= 0 for r in results)
    finally:
        await producer.stop()
    assert sorted(await consume(kafka_bootstrap, unique, 50)) == sorted(sent)


async def test_a_faust_agent_forwards_records_end_to_end(kafka_bootstrap: str, unique: str, tmp_path) -> None:
    await ensure_topics(kafka_bootstrap, [TopicSpec(f"{unique}-in", 2, 1, "in"),
                                          TopicSpec(f"{unique}-out", 2, 1, "out")])
    settings = Settings.model_validate({"data_dir": str(tmp_path), "topics": {"partitions": 2}})
    app = create_app(settings, kafka_bootstrap, app_id=unique)
    source = app.topic(f"{unique}-in", value_serializer="raw")
    target = app.topic(f"{unique}-out", value_serializer="raw")

    @app.agent(source)
    async def shout(stream):  # type: ignore[no-untyped-def]
        async for value in stream:
            await target.send(value=value.upper())

    await app.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(f"{unique}-in", f"hello-{i}".encode())
        finally:
            await producer.stop()
        out = await consume(kafka_bootstrap, f"{unique}-out", 10)
    finally:
        await app.stop()
    assert sorted(out) == sorted(f"HELLO-{i}".encode() for i in range(10))


async def test_a_colliding_topic_name_is_refused_with_the_reason(kafka_bootstrap: str, unique: str) -> None:
    from core.errors import BrokerUnavailableError

    await ensure_topics(kafka_bootstrap, [TopicSpec(f"{unique}_x", 1, 1, "first")])
    with pytest.raises(BrokerUnavailableError, match="collides"):
        await ensure_topics(kafka_bootstrap, [TopicSpec(f"{unique}.x", 1, 1, "collides")])
