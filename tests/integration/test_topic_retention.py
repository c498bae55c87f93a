"""The raw topics' retention on the real broker: set when they are created, applied to
existing topics by `ollystack topics create` (other overrides kept), only warned about at start."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from test_cli import ollystack_env, run_cli

from core.settings import TopicSettings
from pipeline.topics import ConfigDrift, align_topic_configs, ensure_topics, topic_specs

HOUR_MS = 3_600_000


def topic_settings(prefix: str, retention_ms: int) -> TopicSettings:
    return TopicSettings(spans=f"{prefix}-spans", logs=f"{prefix}-logs", metrics=f"{prefix}-metrics",
                         enriched_spans=f"{prefix}.spans", enriched_logs=f"{prefix}.logs",
                         enriched_metrics=f"{prefix}.metrics", alerts=f"{prefix}.alerts",
                         deadletter=f"{prefix}.deadletter", partitions=1, raw_retention_ms=retention_ms)


async def overrides(bootstrap: str, topic: str) -> dict[str, str]:
    """The configs set on the topic itself (not broker defaults)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = [e for a in answers for r in a.to_object()["resources"] for e in r["config_entries"]]
    return {e["config_names"]: e["config_value"] for e in entries if e["config_source"] == 1}


@pytest.mark.asyncio
async def test_raw_topics_are_created_with_the_retention(kafka_bootstrap: str, unique: str) -> None:
    topics = topic_settings(unique, 2 * HOUR_MS)
    await ensure_topics(kafka_bootstrap, topic_specs(topics))
    for raw in (topics.spans, topics.logs, topics.metrics):
        assert (await overrides(kafka_bootstrap, raw)).get("retention.ms") == str(2 * HOUR_MS)
    assert "retention.ms" not in await overrides(kafka_bootstrap, topics.enriched_spans)
    assert await align_topic_configs(kafka_bootstrap, topic_specs(topics), alter=False) == []


@pytest.mark.asyncio
async def test_a_changed_retention_is_warned_at_start_and_applied_on_request(
        kafka_bootstrap: str, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    topics = topic_settings(unique, 3 * HOUR_MS)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # made by someone else, with an override of their own
        await admin.create_topics([NewTopic(topics.spans, 1, 1, topic_configs={
            "retention.ms": str(HOUR_MS), "max.message.bytes": "2000000"})])
    finally:
        await admin.close()
    await ensure_topics(kafka_bootstrap, topic_specs(topics))
    drift = ConfigDrift(topics.spans, "retention.ms", str(HOUR_MS), str(3 * HOUR_MS))

    with caplog.at_level(logging.WARNING, logger="pipeline.topics"):
        assert await align_topic_configs(kafka_bootstrap, topic_specs(topics), alter=False) == [drift]
    assert f"topic {topics.spans} has retention.ms={HOUR_MS}" in caplog.text
    assert (await overrides(kafka_bootstrap, topics.spans))["retention.ms"] == str(HOUR_MS)  # untouched

    assert await align_topic_configs(kafka_bootstrap, topic_specs(topics), alter=True) == [drift]
    assert await overrides(kafka_bootstrap, topics.spans) == {"retention.ms": str(3 * HOUR_MS),
                                                              "max.message.bytes": "2000000"}
    assert await align_topic_configs(kafka_bootstrap, topic_specs(topics), alter=False) == []


def test_topics_create_applies_the_retention_setting(tmp_path: Path, kafka_bootstrap: str, unique: str) -> None:
    env = ollystack_env(tmp_path, OLLYSTACK_KAFKA_BOOTSTRAP=kafka_bootstrap, OLLYSTACK_TOPICS_SPANS=f"{unique}-spans",
                        OLLYSTACK_TOPICS_LOGS=f"{unique}-logs", OLLYSTACK_TOPICS_METRICS=f"{unique}-metrics",
                        OLLYSTACK_TOPICS_PARTITIONS="1", OLLYSTACK_TOPICS_RAW_RETENTION_MS=str(HOUR_MS))
    assert run_cli("topics", "create", env=env).returncode == 0
    longer = run_cli("topics", "create", env={**env, "OLLYSTACK_TOPICS_RAW_RETENTION_MS": str(5 * HOUR_MS)})
    assert longer.returncode == 0, longer.stderr
    assert f"altered {unique}-spans retention.ms: {HOUR_MS} -> {5 * HOUR_MS}" in longer.stdout
