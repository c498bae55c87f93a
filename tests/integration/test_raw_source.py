"""The ingest stage's raw-topic source on the real broker: commits stop at the first record
not acknowledged, and a rebalance hands over exactly the records not acknowledged."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.ingest.source import RawSource
from core.settings import KafkaSettings
from pipeline.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.asyncio
PER_PARTITION = 10


@pytest_asyncio.fixture
async def topic(kafka_bootstrap: str, unique: str) -> AsyncIterator[str]:
    """A topic of two partitions holding records 0..9 on each (value b"<partition>:<n>")."""
    name = f"{unique}.raw"
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 2, 1, "test")])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition in (0, 1):
            for n in range(PER_PARTITION):
                await producer.send_and_wait(name, f"{partition}:{n}".encode(), partition=partition)
    finally:
        await producer.stop()
    yield name


async def take_all(source: RawSource, count: int, deadline_s: float = 30.0) -> list[bytes]:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    taken: list[bytes] = []
    while len(taken) < count:
        assert loop.time() < end, f"took {len(taken)} of {count} records"
        taken += [r.value for r in await source.take(count - len(taken), 0.2)]
    return taken


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return {p: await reader.committed(TopicPartition(topic, p)) for p in (0, 1)}
    finally:
        await reader.stop()


async def test_commits_stop_at_the_first_record_not_acknowledged(kafka_bootstrap: str, topic: str,
                                                                  unique: str) -> None:
    source = RawSource(topic, f"{unique}-g", kafka_bootstrap, KafkaSettings())
    await source.start()
    try:
        records = []
        while len(records) < 2 * PER_PARTITION:
            records += await source.take(2 * PER_PARTITION - len(records), 0.2)
        by_partition = {p: [r for r in records if r.partition == p] for p in (0, 1)}
        assert [r.offset for r in by_partition[0]] == list(range(PER_PARTITION))
        # Out of order: the later records of partition 0 first; partition 1 all but its first.
        source.ack(by_partition[0][4:])
        source.ack(by_partition[1][1:])
        await source.commit()
        assert await committed(kafka_bootstrap, f"{unique}-g", topic) == {0: None, 1: None}
        source.ack(by_partition[0][:4])
        await source.commit()
        assert await committed(kafka_bootstrap, f"{unique}-g", topic) == {0: PER_PARTITION, 1: None}
        assert source.lag()[TopicPartition(topic, 0)] == 0
    finally:
        await source.stop()
    # What was not acknowledged is read again, and only that.
    again = RawSource(topic, f"{unique}-g", kafka_bootstrap, KafkaSettings())
    await again.start()
    try:
        assert sorted(await take_all(again, PER_PARTITION)) == sorted(f"1:{n}".encode() for n in range(PER_PARTITION))
    finally:
        await again.stop()


async def test_a_rebalance_hands_over_exactly_what_was_not_acknowledged(kafka_bootstrap: str, topic: str,
                                                                        unique: str) -> None:
    group = f"{unique}-g"
    first = RawSource(topic, group, kafka_bootstrap, KafkaSettings(), drain_timeout_s=1.0)
    await first.start()
    second = RawSource(topic, group, kafka_bootstrap, KafkaSettings())
    try:
        records = []
        while len(records) < 2 * PER_PARTITION:
            records += await first.take(2 * PER_PARTITION - len(records), 0.2)
        # Partition 0 done; partition 1 done up to its sixth record and stuck after it.
        first.ack([r for r in records if r.partition == 0 or r.offset < 5])
        await second.start()  # the rebalance: the first member commits what it can, then gives up
        redelivered = await asyncio.wait_for(_first_records(first, second, 5), 60)
        assert sorted(redelivered) == [f"1:{n}".encode() for n in range(5, PER_PARTITION)]
        assert (await committed(kafka_bootstrap, group, topic))[0] == PER_PARTITION
    finally:
        await second.stop()
        await first.stop()


async def _first_records(a: RawSource, b: RawSource, count: int) -> list[bytes]:
    """The next ``count`` records the two members take, whichever owns them now."""
    taken: list[bytes] = []
    enough = asyncio.Event()

    async def keep_taking(source: RawSource) -> None:
        while True:
            taken.extend(r.value for r in await source.take(count, 0.1))
            if len(taken) >= count:
                enough.set()

    tasks = [asyncio.ensure_future(keep_taking(source)) for source in (a, b)]
    try:
        await enough.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return taken


async def test_a_take_stops_at_its_byte_budget_and_the_next_goes_on_from_there(kafka_bootstrap: str, topic: str,
                                                                               unique: str) -> None:
    source = RawSource(topic, f"{unique}-g", kafka_bootstrap, KafkaSettings())
    await source.start()
    try:
        takes: list[list[bytes]] = []
        while sum(map(len, takes)) < 2 * PER_PARTITION:
            taken = [r.value for r in await source.take(100, 0.5, max_bytes=10) if r.value is not None]
            assert sum(map(len, taken)) <= 10 or len(taken) == 1, taken
            takes.append(taken)
        values = [v for taken in takes for v in taken]
        for partition in (0, 1):
            assert [v for v in values if v.startswith(b"%d:" % partition)] == \
                [f"{partition}:{n}".encode() for n in range(PER_PARTITION)]
    finally:
        await source.stop()
