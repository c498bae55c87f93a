"""`ollystack replay`: re-read a raw topic range through the same ingest code as the live agents."""
from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from tqdm import tqdm

from agents.cardinality import CardinalityLimiter
from agents.deadletter import DeadLetters, Kind, SourceRecord
from agents.ingest.agent import build_plans
from agents.ingest.batch import Ingestor
from agents.ingest.config import IngestConfig
from agents.ingest.state import TraceStates
from agents.ingest.writer import BatchWriter, Origin
from agents.metrics import WorkerMetrics
from core.errors import BrokerUnavailableError, ConfigError
from core.settings import Settings
from core.types import Signal
from pipeline.topics import describe_topics
from sinks.backend import decoding_reader, open_engine
from sinks.engine import Engine
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """A replay bound: an offset (same for every partition) or a time in ms since the epoch."""

    offset: int | None = None
    time_ms: int | None = None


def parse_position(text: str, option: str) -> Position:
    """``1234`` is an offset; ``2026-11-23T10:00:00Z`` (or any ISO-8601 time) is a time.

    Raises ConfigError naming the option when it is neither."""
    if text.isdigit():
        return Position(offset=int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected an offset (digits) or an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Position(time_ms=int(moment.timestamp() * 1000))


def _topic(settings: Settings, signal: Signal) -> str:
    return {"traces": settings.topics.spans, "logs": settings.topics.logs, "metrics": settings.topics.metrics}[signal]


async def _bounds(consumer: AIOKafkaConsumer, parts: list[TopicPartition], start: Position,
                  stop: Position | None) -> dict[TopicPartition, tuple[int, int]]:
    """[first, end) offsets per partition; end is fixed now, so the replay always finishes."""
    begin = await consumer.beginning_offsets(parts)
    end = await consumer.end_offsets(parts)

    async def resolve(pos: Position, default: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        if pos.offset is not None:
            return {tp: min(max(pos.offset, begin[tp]), end[tp]) for tp in parts}
        found = await consumer.offsets_for_times({tp: pos.time_ms for tp in parts})
        return {tp: (found[tp].offset if found.get(tp) else default[tp]) for tp in parts}

    first = await resolve(start, end)
    last = await resolve(stop, end) if stop is not None else end
    return {tp: (first[tp], max(first[tp], last[tp])) for tp in parts}


class Replayer:
    """Ingest raw records of one signal exactly as the live agents do, trace states included;
    a record that cannot be read or stored is dead-lettered, as the live agents do."""

    def __init__(self, signal: Signal, warehouse: Warehouse, engine: Engine, config: IngestConfig,
                 deadletters: DeadLetters, metrics: WorkerMetrics) -> None:
        self.signal = signal
        self.config = config.check()
        e = config.enrich
        limiter = CardinalityLimiter(e.cardinality_max_values, e.cardinality_window_s, e.cardinality_max_keys)
        self.states = TraceStates(decoding_reader(warehouse), e.trace_cache_traces)
        self.ingestor = Ingestor(engine, self.config, self.states, build_plans(self.config, limiter))
        self.writer = BatchWriter(warehouse, self.config, metrics)
        self.deadletters = deadletters
        self.dead = 0

    async def replay(self, records: list[ConsumerRecord[bytes, bytes]]) -> int:
        """Store one partition's run of records; return the rows stored. Dedup tokens name
        the replay (``replay.<topic>``) and the offsets, so replaying a range twice inserts
        nothing new, and span/log/point tables collapse rows the live path already stored."""
        ingested = await self.ingestor.ingest(self.signal, [r.value for r in records])

        async def set_aside(index: int, kind: Kind, reason: str) -> None:
            await self.deadletters.write(SourceRecord.of(records[index]), "replay", kind, reason)
            self.dead += 1

        for index, (kind, reason) in sorted(ingested.refused.items()):
            await set_aside(index, kind, reason)
        positions = [Origin(f"replay.{r.topic}", r.partition, r.offset) for r in records]
        written = await self.writer.write(ingested, positions, set_aside)
        self.states.remember(ingested.updates)
        return written.rows


async def _producer(bootstrap: str, settings: Settings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                client_id=f"{settings.kafka.client_id}-replay",
                                max_request_size=settings.kafka.max_message_bytes)
    try:
        await producer.start()
    except Exception as exc:  # noqa: BLE001 - aiokafka raises several kinds for an unreachable broker
        await producer.stop()
        raise BrokerUnavailableError(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
    return producer


async def run_replay(settings: Settings, warehouse: Warehouse, bootstrap: str, signal: Signal,
                     start: Position, stop: Position | None = None, *, group_id: str | None = None,
                     batch_records: int = 200, progress: bool = True) -> dict[str, int]:
    """Replay ``signal``'s raw topic from ``start`` to ``stop`` (default: the end right now).

    Uses its own consumer group, so the live workers' offsets are untouched. Every batch is
    one partition's contiguous offset range with a token derived from it, so replaying a
    range twice inserts nothing new, and span/log/point tables collapse rows the live path
    already stored. Undecodable records are dead-lettered. Returns counts: records, rows,
    dead (records dead-lettered)."""
    topic = _topic(settings, signal)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id or f"ollystack-replay-{signal}",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=settings.kafka.max_message_bytes,
                                fetch_max_bytes=4 * settings.kafka.max_message_bytes)
    try:
        await consumer.start()
    except Exception as exc:  # noqa: BLE001 - aiokafka raises several kinds for an unreachable broker
        raise BrokerUnavailableError(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
    producer = await _producer(bootstrap, settings)
    deadletter_topic = settings.topics.deadletter

    async def send(key: bytes, value: bytes | None, headers: list[tuple[str, bytes]]) -> Awaitable[Any]:
        delivery: Awaitable[Any] = await producer.send(deadletter_topic, value, key=key, headers=headers)
        return delivery

    metrics = WorkerMetrics()
    replayer = Replayer(signal, warehouse, open_engine(warehouse, settings.data_dir),
                        IngestConfig.from_settings(settings), DeadLetters(send, metrics.deadletters), metrics)
    totals = {"records": 0, "rows": 0, "dead": 0}
    try:
        count = (await describe_topics(bootstrap)).get(topic)
        if not count:
            raise ConfigError(f"topic {topic!r} does not exist on {bootstrap}")
        parts = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(parts)
        bounds = await _bounds(consumer, parts, start, stop)
        total = sum(end - first for first, end in bounds.values())
        with tqdm(total=total, unit="rec", desc=f"replay {topic}", disable=not progress, file=sys.stderr) as bar:
            for tp, (first, end) in bounds.items():
                if end > first:
                    await _replay_partition(consumer, tp, first, end, replayer, batch_records, bar, totals)
    finally:
        await consumer.stop()
        await producer.stop()
    totals["dead"] = replayer.dead
    return totals


async def _replay_partition(consumer: AIOKafkaConsumer, tp: TopicPartition, first: int, end: int,
                            replayer: Replayer, batch_records: int, bar: Any, totals: dict[str, int]) -> None:
    consumer.seek(tp, first)
    position = first
    while position < end:
        fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=batch_records)
        records = [r for r in fetched.get(tp, []) if r.offset < end]
        if not records:
            continue
        totals["rows"] += await replayer.replay(records)
        totals["records"] += len(records)
        position = records[-1].offset + 1
        await consumer.commit({tp: position})
        bar.update(len(records))
