"""The raw topics carry the configured retention; the setting refuses what would lose records."""
from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import TopicSettings, load_settings
from pipeline.topics import RETENTION_MS, topic_specs


def test_only_the_raw_topics_carry_the_retention() -> None:
    topics = TopicSettings(raw_retention_ms=3_600_000)
    configs = {spec.name: dict(spec.configs) for spec in topic_specs(topics)}
    assert {name for name, c in configs.items() if c} == {topics.spans, topics.logs, topics.metrics}
    assert configs[topics.spans] == {RETENTION_MS: "3600000"}
    assert dict(topic_specs(TopicSettings())[0].configs) == {RETENTION_MS: str(7 * 86_400_000)}


@pytest.mark.parametrize("value", ["-1", "60000"], ids=["keep-every-record", "one-minute"])
def test_retention_accepted(value: str) -> None:
    settings = load_settings(environ={"OLLYSTACK_TOPICS_RAW_RETENTION_MS": value})
    assert settings.topics.raw_retention_ms == int(value)


@pytest.mark.parametrize("value", ["0", "59999", "-2"], ids=["zero", "under-a-minute", "below-minus-one"])
def test_retention_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match=f"OLLYSTACK_TOPICS_RAW_RETENTION_MS={value!r}"):
        load_settings(environ={"OLLYSTACK_TOPICS_RAW_RETENTION_MS": value})
