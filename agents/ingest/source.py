"""RawSource: one signal's raw topic read in batches by its own aiokafka consumer group.

Why not a Faust agent: a Faust stream hands records over one at a time, and its consumer
spent about 360 µs of the event loop on each (two tasks and a wait per message, an event
and a channel hop; py-spy on benchmarks/ingest_pipeline.py). On 8-span records that was
43 % of the loop, more than decoding them took. Here a batch is one ``getmany``.

Offsets: records are acknowledged in any order, and each partition commits up to its
first record taken and not yet acknowledged: every COMMIT_INTERVAL_S, before a rebalance
takes partitions away (after waiting for what was taken to be acknowledged) and on stop.
A record not acknowledged is read again by whoever owns its partition next.

The group is ``<app id>-ingest-<signal>`` (``ingest_group``). A partition the group has no
offset for starts where the app's own group committed (the Faust agents read raw topics
under it before), so an upgrade neither skips nor re-reads records; failing that, at the
earliest record."""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from core.errors import BrokerUnavailableError
from core.settings import KafkaSettings, TopicSettings
from core.types import Signal

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 2.0
# How long a rebalance waits for the records taken to be acknowledged before it gives their
# partitions up anyway (they are read again by the next owner); below the group's rebalance
# timeout, so this member is not dropped from the group meanwhile.
DRAIN_TIMEOUT_S = 30.0
_POLL_S = 1.0  # an idle take wakes this often to commit what was acknowledged meanwhile


def ingest_group(app_id: str, signal: Signal) -> str:
    """The consumer group reading ``signal``'s raw topic for the worker app ``app_id``."""
    return f"{app_id}-ingest-{signal}"


def raw_sources(topics: TopicSettings, kafka: KafkaSettings, bootstrap: str, app_id: str) -> dict[Signal, RawSource]:
    """A source per signal for the worker app ``app_id``, each in its own group."""
    raw: dict[Signal, str] = {"traces": topics.spans, "logs": topics.logs, "metrics": topics.metrics}
    return {signal: RawSource(topic, ingest_group(app_id, signal), bootstrap, kafka, legacy_group=app_id)
            for signal, topic in raw.items()}


class _Offsets:
    """One partition's records taken, in offset order, and which are acknowledged."""

    def __init__(self, committed: int | None) -> None:
        self.taken: collections.deque[int] = collections.deque()
        self.acked: set[int] = set()
        self.committed = committed  # the last offset committed (or found committed)
        self.commit_point: int | None = None  # the offset to commit next, when it moved

    def ack(self, offset: int) -> None:
        self.acked.add(offset)
        taken, acked = self.taken, self.acked
        while taken and taken[0] in acked:
            acked.discard(taken[0])
            self.commit_point = taken.popleft() + 1

    @property
    def settled(self) -> bool:
        return not self.taken


class RawSource(ConsumerRebalanceListener):  # type: ignore[misc]
    """Batches of one raw topic; ``ack`` what is done with, the rest is read again. It is
    its own consumer's rebalance listener."""

    def __init__(self, topic: str, group: str, bootstrap: str, kafka: KafkaSettings, *,
                 legacy_group: str | None = None, drain_timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        self.topic, self.group, self._legacy_group = topic, group, legacy_group
        self._drain_timeout_s = drain_timeout_s
        self._bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, client_id=f"{kafka.client_id}-ingest",
            enable_auto_commit=False, auto_offset_reset="earliest",
            # A raw record may be as large as the gateway writes: one per fetch would starve.
            max_partition_fetch_bytes=kafka.max_message_bytes,
            fetch_max_bytes=max(52_428_800, 4 * kafka.max_message_bytes),
            # As the Faust app: a worker killed outright is noticed after 10 s, and a
            # rebalance does not wait a minute for stragglers.
            session_timeout_ms=10_000, heartbeat_interval_ms=1_000, rebalance_timeout_ms=60_000)
        self._offsets: dict[TopicPartition, _Offsets] = {}
        self._held: list[Any] = []  # fetched, not yet taken (past a take's byte budget)
        self._revoking: asyncio.Event | None = None  # set once nothing taken is in progress
        self._assigned = asyncio.Event()
        self._stopping = False
        self._last_commit = 0.0

    async def start(self, assigned_within_s: float = 60.0) -> None:
        """Join the group; return once this member has its first assignment (possibly of no
        partition). Raises BrokerUnavailableError when the broker cannot be reached."""
        try:
            await self._consumer.start()
        except Exception as exc:  # noqa: BLE001 - aiokafka raises several kinds for an unreachable broker
            await self._consumer.stop()
            raise BrokerUnavailableError(f"Kafka at {self._bootstrap} is unreachable: {exc}") from exc
        self._consumer.subscribe([self.topic], listener=self)
        try:
            await asyncio.wait_for(self._assigned.wait(), assigned_within_s)
        except TimeoutError:
            await self._consumer.stop()
            raise BrokerUnavailableError(f"no assignment in consumer group {self.group} within "
                                         f"{assigned_within_s:g} s") from None

    async def take(self, max_records: int, within_s: float, max_bytes: int | None = None) -> list[Any]:
        """The next records of this member's partitions (each partition's in offset order):
        at most ``max_records`` and, past the first, ``max_bytes`` of values; returned once
        either is reached or ``within_s`` after the first arrived. Waits for the first as
        long as it takes, committing meanwhile.

        Records fetched past ``max_bytes`` are held for the next take: with a backlog of
        large records a take fills at once, and waiting out ``within_s`` (or cutting off a
        small remainder batch) left the decoding lane idle."""
        loop = asyncio.get_running_loop()
        records, self._held = self._held, []
        size = sum(len(record.value or b"") for record in records)
        deadline = loop.time() + within_s if records else None
        while len(records) < max_records and (max_bytes is None or size < max_bytes):
            wait = _POLL_S if deadline is None else max(0.0, deadline - loop.time())
            try:
                fetched = await self._consumer.getmany(timeout_ms=int(wait * 1000),
                                                       max_records=max_records - len(records))
            except asyncio.CancelledError:
                self._held = records + self._held  # handed to no one: the next take starts with them
                raise
            for tp, batch in fetched.items():
                if tp in self._offsets:  # else fetched just before its partition was revoked
                    records.extend(batch)
                    size += sum(len(record.value or b"") for record in batch)
            if records and deadline is None:
                deadline = loop.time() + within_s
            if deadline is not None and loop.time() >= deadline:
                break
            if not records:
                await self.commit(due_only=True)
        if max_bytes is not None and size > max_bytes:
            records, self._held = _cut(records, max_bytes)
        for record in records:
            self._offsets[TopicPartition(record.topic, record.partition)].taken.append(record.offset)
        await self.commit(due_only=True)
        return records

    def ack(self, records: Iterable[Any]) -> None:
        """``records`` (taken from this source) are done with: stored, or set aside."""
        for record in records:
            offsets = self._offsets.get(TopicPartition(record.topic, record.partition))
            if offsets is not None:  # else its partition was given up meanwhile
                offsets.ack(record.offset)
        if self._revoking is not None and not self._draining():
            self._revoking.set()

    async def commit(self, *, due_only: bool = False) -> None:
        """Commit each partition up to its first record not acknowledged. A failed commit
        is logged and left: those records are read again, never lost."""
        loop = asyncio.get_running_loop()
        if due_only and loop.time() - self._last_commit < COMMIT_INTERVAL_S:
            return
        self._last_commit = loop.time()
        points = {tp: o.commit_point for tp, o in self._offsets.items()
                  if o.commit_point is not None and o.commit_point != o.committed}
        if not points:
            return
        try:
            await self._consumer.commit(points)
        except KafkaError as exc:
            log.warning("offset commit failed; the records after the last commit will be read again",
                        extra={"group": self.group, "error": repr(exc)})
            return
        for tp, point in points.items():
            if tp in self._offsets:
                self._offsets[tp].committed = point

    def lag(self) -> dict[TopicPartition, int]:
        """Records of each partition this member owns after its committed offset, for the
        partitions it has fetched from (their end offset known) and has an offset on."""
        lags = {}
        for tp, offsets in list(self._offsets.items()):
            end = self._consumer.highwater(tp)
            if end is not None and offsets.committed is not None:
                lags[tp] = max(0, end - offsets.committed)
        return lags

    async def stop(self) -> None:
        """Commit what was acknowledged and leave the group."""
        self._stopping = True
        try:
            await self.commit()
        finally:
            await self._consumer.stop()

    def _draining(self) -> bool:
        return any(not o.settled for o in self._offsets.values())

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Before a rebalance: wait (a while) for every record taken to be acknowledged,
        commit, and forget the partitions given up."""
        if not self._stopping:
            if self._draining():
                self._revoking = asyncio.Event()
                try:
                    await asyncio.wait_for(self._revoking.wait(), self._drain_timeout_s)
                except TimeoutError:
                    log.warning("rebalance: the records still in progress are read again by the next owner",
                                extra={"group": self.group})
                finally:
                    self._revoking = None
            await self.commit()
        for tp in revoked:
            self._offsets.pop(tp, None)
        # Held records were never handed out: whoever owns their partitions next reads them.
        self._held = [r for r in self._held if TopicPartition(r.topic, r.partition) in self._offsets]

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """After a rebalance: start each new partition at the group's offset, else the
        legacy group's, else (auto_offset_reset) its earliest record."""
        fresh = [tp for tp in assigned if tp not in self._offsets]
        committed: dict[TopicPartition, int | None] = {tp: await self._consumer.committed(tp) for tp in fresh}
        missing = [tp for tp, offset in committed.items() if offset is None]
        if missing and self._legacy_group:
            for tp, offset in (await self._legacy_offsets(missing)).items():
                self._consumer.seek(tp, offset)
                committed[tp] = None  # the new group commits its own once records are done
        for tp in fresh:
            self._offsets[tp] = _Offsets(committed[tp])
        self._assigned.set()

    async def _legacy_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        try:
            await admin.start()
            found = await admin.list_consumer_group_offsets(self._legacy_group or "", partitions=partitions)
        except KafkaError as exc:
            log.warning("the app group's offsets could not be read; new partitions start at their earliest",
                        extra={"group": self._legacy_group, "error": repr(exc)})
            return {}
        finally:
            await admin.close()
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


def _cut(records: list[Any], max_bytes: int) -> tuple[list[Any], list[Any]]:
    """``records`` split where their values pass ``max_bytes`` (the first always kept). A
    prefix keeps each partition's records in offset order, and so does the rest."""
    size = 0
    for index, record in enumerate(records):
        size += len(record.value or b"")
        if size > max_bytes and index > 0:
            return records[:index], records[index:]
    return records, []
