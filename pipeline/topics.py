"""The topics OllyStack reads and writes, and creating them on the broker."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from core.errors import BrokerUnavailableError
from core.settings import TopicSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    purpose: str


def topic_specs(topics: TopicSettings) -> list[TopicSpec]:
    """Every topic of the design. Raw and enriched topics share one partition count and
    key, so one worker sees a whole trace on both sides."""
    p, r = topics.partitions, topics.replication
    return [
        TopicSpec(topics.spans, p, r, "raw OTLP trace export requests (otlp_proto)"),
        TopicSpec(topics.logs, p, r, "raw OTLP log export requests (otlp_proto)"),
        TopicSpec(topics.metrics, p, r, "raw OTLP metric export requests (otlp_proto)"),
        TopicSpec(topics.enriched_spans, p, r, "enriched span rows"),
        TopicSpec(topics.enriched_logs, p, r, "enriched log rows"),
        TopicSpec(topics.enriched_metrics, p, r, "enriched metric rows"),
        TopicSpec(topics.alerts, 1, r, "alerts (Alertmanager-shaped JSON)"),
        TopicSpec(topics.deadletter, 1, r, "undecodable or invalid input, with the reason"),
    ]


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], client_id: str = "ollystack-admin",
                        ready_timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names this call created.

    Existing topics are left as they are (their partition count is not changed). A topic
    another process created in the meantime counts as existing. Returns once every topic
    of ``specs`` is in the broker's metadata with a leader for each partition, so a
    producer, a consumer or the next call sees them. Raises BrokerUnavailableError when
    the broker cannot be reached, refuses a topic, or the topics are not ready within
    ``ready_timeout_s``."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import (
        KafkaConnectionError,
        KafkaError,
        TopicAlreadyExistsError,
        for_code,
    )

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise BrokerUnavailableError(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        for spec in (s for s in specs if s.name not in existing):
            try:
                response = await admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication)])
            except TopicAlreadyExistsError:
                continue  # created by another process between list and create
            for topic, code, *message in getattr(response, "topic_errors", ()):
                error = for_code(code)
                if code == 0:
                    created.append(topic)
                elif error is not TopicAlreadyExistsError:
                    detail = message[0] if message and message[0] else error.__name__
                    raise BrokerUnavailableError(f"Kafka refused to create topic {topic!r}: {detail}")
        await _wait_ready(admin, [s.name for s in specs], ready_timeout_s)
    except KafkaError as exc:
        raise BrokerUnavailableError(f"creating topics on {bootstrap} failed: {exc}") from exc
    else:
        return created
    finally:
        await admin.close()


async def _wait_ready(admin: Any, names: list[str], timeout_s: float) -> None:
    """Until every topic of ``names`` is in the metadata with a leader on every partition:
    a created topic reaches the metadata a moment after the create answered."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = {d["topic"]: d for d in await admin.describe_topics(names)}
        pending = [name for name in names if not _has_leaders(described.get(name))]
        if not pending:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise BrokerUnavailableError(f"topics {pending} have no leader {timeout_s:g}s after they were created")
        await asyncio.sleep(0.1)


def _has_leaders(described: dict[str, Any] | None) -> bool:
    if not described or described.get("error_code"):
        return False
    partitions = described.get("partitions") or []
    return bool(partitions) and all(p.get("leader", -1) >= 0 for p in partitions)


async def describe_topics(bootstrap: str) -> dict[str, int]:
    """Topic name -> partition count, for every topic on the broker."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ollystack-admin")
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise BrokerUnavailableError(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
    try:
        names = await admin.list_topics()
        described = await admin.describe_topics(names) if names else []
        return {d["topic"]: len(d["partitions"]) for d in sorted(described, key=lambda d: d["topic"])}
    finally:
        await admin.close()
