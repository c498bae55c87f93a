"""The topics OllyStack reads and writes, and creating them on the broker."""
from __future__ import annotations

from dataclasses import dataclass

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


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], client_id: str = "ollystack-admin") -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (their partition count is not changed).
    Raises BrokerUnavailableError when the broker cannot be reached."""
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
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        for spec in missing:
            try:
                response = await admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication)])
            except TopicAlreadyExistsError:
                continue  # created by another process between list and create
            for topic, code, *message in getattr(response, "topic_errors", ()):
                error = for_code(code)
                if code and error is not TopicAlreadyExistsError:
                    detail = message[0] if message and message[0] else error.__name__
                    raise BrokerUnavailableError(f"Kafka refused to create topic {topic!r}: {detail}")
        return [s.name for s in missing]
    except KafkaError as exc:
        raise BrokerUnavailableError(f"creating topics on {bootstrap} failed: {exc}") from exc
    finally:
        await admin.close()


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
