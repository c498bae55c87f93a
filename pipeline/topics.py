"""The topics OllyStack reads and writes, and creating them on the broker."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from core.errors import BrokerUnavailableError
from core.settings import TopicSettings

log = logging.getLogger(__name__)
RETENTION_MS = "retention.ms"
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source: set on the topic itself


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    purpose: str
    configs: tuple[tuple[str, str], ...] = ()  # topic-level configs OllyStack sets


@dataclass(frozen=True)
class ConfigDrift:
    """A topic config on the broker that differs from what the settings ask for."""

    topic: str
    name: str
    broker_value: str | None
    wanted: str


def topic_specs(topics: TopicSettings) -> list[TopicSpec]:
    """Every topic of the design. Raw and enriched topics share one partition count and
    key, so one worker sees a whole trace on both sides."""
    p, r = topics.partitions, topics.replication
    # The raw topics are the replay source (`ollystack replay`): their retention is how far
    # back the warehouse can be rebuilt.
    raw = ((RETENTION_MS, str(topics.raw_retention_ms)),)
    return [
        TopicSpec(topics.spans, p, r, "raw OTLP trace export requests (otlp_proto)", raw),
        TopicSpec(topics.logs, p, r, "raw OTLP log export requests (otlp_proto)", raw),
        TopicSpec(topics.metrics, p, r, "raw OTLP metric export requests (otlp_proto)", raw),
        TopicSpec(topics.enriched_spans, p, r, "enriched span rows"),
        TopicSpec(topics.enriched_logs, p, r, "enriched log rows"),
        TopicSpec(topics.enriched_metrics, p, r, "enriched metric rows"),
        TopicSpec(topics.alerts, 1, r, "alerts (Alertmanager-shaped JSON)"),
        TopicSpec(topics.deadletter, 1, r, "undecodable or invalid input, with the reason"),
    ]


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], client_id: str = "ollystack-admin",
                        ready_timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet, with their configs; return the names this
    call created.

    Existing topics are left as they are (their partition count and configs are not
    changed; ``align_topic_configs`` compares and alters configs). A topic
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
                response = await admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication,
                                                               topic_configs=dict(spec.configs))])
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


async def align_topic_configs(bootstrap: str, specs: list[TopicSpec], *, alter: bool,
                              client_id: str = "ollystack-admin") -> list[ConfigDrift]:
    """Compare the configs of ``specs`` (existing topics) with the broker's; return what differs.

    With ``alter`` each differing topic is altered (its other topic-level overrides kept:
    the broker's AlterConfigs replaces a topic's whole set); without, each difference is
    logged as a warning naming the command that applies it. Raises BrokerUnavailableError
    when the broker cannot be reached or refuses."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError, KafkaError

    wanted = {s.name: dict(s.configs) for s in specs if s.configs}
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise BrokerUnavailableError(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        drifts = await _align(admin, {n: c for n, c in wanted.items() if n in existing}, alter)
    except KafkaError as exc:
        raise BrokerUnavailableError(f"reading topic configs on {bootstrap} failed: {exc}") from exc
    finally:
        await admin.close()
    for d in drifts:
        if alter:
            log.info("topic %s: %s %s -> %s", d.topic, d.name, d.broker_value, d.wanted)
        else:
            log.warning("topic %s has %s=%s but the settings ask for %s; `ollystack topics create` applies it "
                        "(or change the setting to match the broker)", d.topic, d.name, d.broker_value, d.wanted)
    return drifts


async def _align(admin: Any, wanted: dict[str, dict[str, str]], alter: bool) -> list[ConfigDrift]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import for_code

    if not wanted:
        return []
    answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted])
    drifts: list[ConfigDrift] = []
    for resource in (r for answer in answers for r in answer.to_object()["resources"]):
        topic, entries = resource["resource_name"], resource["config_entries"]
        current = {e["config_names"]: e["config_value"] for e in entries}
        found = [ConfigDrift(topic, k, current.get(k), v) for k, v in wanted[topic].items() if current.get(k) != v]
        drifts += found
        if not (found and alter):
            continue
        overrides = {e["config_names"]: e["config_value"] for e in entries
                     if e["config_source"] == _DYNAMIC_TOPIC_CONFIG and not e["is_sensitive"]}
        update = ConfigResource(ConfigResourceType.TOPIC, topic, {**overrides, **wanted[topic]})
        for answer in await admin.alter_configs([update]):
            for result in answer.to_object()["resources"]:
                if result["error_code"]:
                    detail = result["error_message"] or for_code(result["error_code"]).__name__
                    raise BrokerUnavailableError(f"Kafka refused to alter topic {topic!r}: {detail}")
    return drifts
