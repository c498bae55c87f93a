"""The Kafka side of the gateway: idempotent acks=all producer; record bytes count against the
gateway's memory budget until Kafka acknowledged them."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial

from aiokafka import AIOKafkaProducer, TopicPartition, errors
from aiokafka.errors import KafkaError

from core.errors import BrokerUnavailableError
from pipeline.gateway.budget import ByteBudget
from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.errors import GatewayError, KafkaUnavailableError, OverloadedError
from pipeline.gateway.logic import KafkaRecord
from pipeline.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)
# How often a request waiting for an unreachable broker checks again.
_PROBE_INTERVAL_S = 0.25
# The longest retry hint an outage earns (see RecordProducer.unavailable_hint_s).
MAX_OUTAGE_HINT_S = 30.0
# Larger batches than aiokafka's 16 KiB default: one request often holds hundreds of traces.
_MAX_BATCH_BYTES = 512 * 1024
# Refusals no retry of the same request can fix: a deployment error (limits, rights).
_PERMANENT = (errors.MessageSizeTooLargeError, errors.RecordListTooLargeError, errors.InvalidTopicError,
              errors.TopicAuthorizationFailedError, errors.ClusterAuthorizationFailedError,
              errors.UnsupportedVersionError, errors.InvalidRequiredAcksError, errors.CorruptRecordException)


class KafkaRejectedError(GatewayError):
    """Kafka refused a record for a reason retrying does not fix (e.g. the broker's
    message.max.bytes is below kafka.max_message_bytes): a deployment error, not bad input."""


def produce_error(exc: BaseException, retry_after_s: float) -> GatewayError:
    """What a client is told when Kafka did not take a record.

    aiokafka marks a batch that expired in its queue (KafkaTimeoutError) as not retriable,
    but that is overload: the same request succeeds later, so it is UNAVAILABLE / 503 with a
    retry hint. Only refusals of the record itself or of our access are permanent."""
    if isinstance(exc, _PERMANENT):
        return KafkaRejectedError(f"Kafka refused a record: {exc!r}")
    return KafkaUnavailableError(f"Kafka did not take the records now: {exc!r}", retry_after_s)


class RecordProducer:
    """Produces a request's records and returns only once Kafka acknowledged all of them."""

    def __init__(self, config: GatewayConfig, metrics: GatewayMetrics, budget: ByteBudget) -> None:
        self._config = config
        self._metrics = metrics
        self.budget = budget
        self._producer: AIOKafkaProducer | None = None
        self._probe_lock = asyncio.Lock()
        self._down_until: dict[str, float] = {}
        self._failing_since: float | None = None

    def unavailable_hint_s(self) -> float:
        """The retry hint for a request Kafka did not take: the configured one at first, then
        as long as Kafka has been failing so far (at most MAX_OUTAGE_HINT_S).

        OTLP SDKs try an export six times and follow the server's RetryInfo, so a fixed
        one-second hint spends their attempts within seconds and drops the data of any
        outage longer than that (a broker restart, a leader election); a hint that grows
        with the outage spreads the same attempts over it, and sends fewer retries at a
        broker that is coming back."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        return min(MAX_OUTAGE_HINT_S, max(self._config.retry_after_s, now - self._failing_since))

    async def start(self) -> None:
        """Connect to Kafka. Raises BrokerUnavailableError when it cannot be reached."""
        cfg = self._config
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap, client_id=cfg.client_id, acks="all",
            enable_idempotence=True,
            compression_type=None if cfg.compression == "none" else cfg.compression,
            max_request_size=cfg.max_message_bytes, max_batch_size=_MAX_BATCH_BYTES,
            request_timeout_ms=int(cfg.produce_timeout_s * 1000),
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BrokerUnavailableError(f"Kafka at {cfg.bootstrap} is unreachable: {exc}") from exc
        self._producer = producer

    async def stop(self, timeout_s: float) -> None:
        """Flush what Kafka has not acknowledged yet and close, giving up after ``timeout_s``
        (nothing lost: records still pending were never acknowledged to a client)."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.stop(), timeout_s)
        except TimeoutError:
            log.warning("Kafka producer did not flush within %.1fs; closing anyway", timeout_s)
            await producer.client.close()

    async def produce(self, signal: str, topic: str, records: Sequence[KafkaRecord]) -> None:
        """Send ``records`` to ``topic`` and wait for every acknowledgement.

        Raises OverloadedError when the in-flight byte budget is spent, KafkaUnavailableError
        when Kafka is unreachable or does not acknowledge within otlp.ack_timeout_s, and
        KafkaRejectedError when Kafka refuses a record for good."""
        if self._producer is None:
            raise KafkaUnavailableError("the gateway is not connected to Kafka", self.unavailable_hint_s())
        total = sum(r.size_bytes for r in records)
        if not self.budget.try_acquire(total):
            raise OverloadedError(
                f"the gateway holds {self.budget.used_bytes} bytes of requests and records, limit "
                f"{self.budget.limit_bytes} (otlp.max_inflight_bytes): retry later", self._config.retry_after_s)
        submitted = 0
        futures: list[asyncio.Future[object]] = []
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._config.ack_timeout_s):
                await self._wait_reachable(self._producer, topic)
                for record in records:
                    fut = await self._producer.send(topic, record.value, key=record.key)
                    submitted += record.size_bytes
                    fut.add_done_callback(partial(self._settled, record.size_bytes))
                    futures.append(fut)
                await asyncio.wait(futures)
        except TimeoutError:
            raise KafkaUnavailableError(
                f"Kafka did not acknowledge within {self._config.ack_timeout_s}s",
                self.unavailable_hint_s()) from None
        except KafkaError as exc:
            raise self._error_for(exc) from exc
        finally:
            # Bytes handed to Kafka are released by their ack callback, the rest now.
            self.budget.release(total - submitted)
        for fut in futures:
            if (failure := fut.exception()) is not None:
                raise self._error_for(failure) from failure
        self._failing_since = None
        self._metrics.produce_latency.labels(signal).observe(time.monotonic() - started)

    def _error_for(self, exc: BaseException) -> GatewayError:
        permanent = isinstance(exc, _PERMANENT)
        return produce_error(exc, self._config.retry_after_s if permanent else self.unavailable_hint_s())

    def _settled(self, size_bytes: int, fut: asyncio.Future[object]) -> None:
        self.budget.release(size_bytes)
        if not fut.cancelled():
            fut.exception()  # mark retrieved: failures are reported by produce() instead

    async def _wait_reachable(self, producer: AIOKafkaProducer, topic: str) -> None:
        """Wait until every partition leader of ``topic`` has a live connection.

        Records are handed to aiokafka only then: the idempotent producer retries a
        record forever, so one queued while Kafka is down would be written after the
        client was told UNAVAILABLE and had sent it again."""
        # The broker's state is not ours to signal: it is polled.
        while not await self._probe(producer, topic):  # noqa: ASYNC110
            await asyncio.sleep(_PROBE_INTERVAL_S)

    async def _probe(self, producer: AIOKafkaProducer, topic: str) -> bool:
        # One probe at a time, and a failed one stands for _PROBE_INTERVAL_S: requests
        # waiting out an outage must not each open a connection (and log its failure).
        loop = asyncio.get_running_loop()
        async with self._probe_lock:
            if loop.time() < self._down_until.get(topic, 0.0):
                return False
            if await self._leaders_ready(producer, topic):
                return True
            self._down_until[topic] = loop.time() + _PROBE_INTERVAL_S
            return False

    @staticmethod
    async def _leaders_ready(producer: AIOKafkaProducer, topic: str) -> bool:
        partitions = await producer.partitions_for(topic)
        cluster = producer.client.cluster
        leaders = {cluster.leader_for_partition(TopicPartition(topic, p)) for p in partitions}
        for node in leaders:
            if node is None or node < 0 or not await producer.client.ready(node):
                return False
        return True
