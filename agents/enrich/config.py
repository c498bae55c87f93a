"""EnrichConfig: the enrich section of the settings, and what the stage derives from it."""
from __future__ import annotations

from functools import cached_property

from agents.correlation import CorrelationConfig
from agents.validation import IdPolicy
from core.errors import ConfigError
from core.settings import EnrichSettings, KafkaSettings, Settings
from sinks.retry import Backoff


class EnrichConfig(EnrichSettings):
    """The enrich stage's frozen config: the ``enrich`` settings section, checked as a whole,
    and the largest enriched record the topic takes (from kafka.max_message_bytes)."""

    max_record_bytes: int = KafkaSettings().max_value_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> EnrichConfig:
        """The config of ``settings.enrich``; raises ConfigError naming a field that cannot work."""
        values = {**settings.enrich.model_dump(), "max_record_bytes": settings.kafka.max_value_bytes}
        return cls.model_validate(values).check()

    @cached_property
    def correlation(self) -> CorrelationConfig:
        """Where incoming IDs are looked for, and the policy they must satisfy."""
        return CorrelationConfig(attribute_keys=self.attribute_keys, header_names=self.header_names,
                                 baggage_member=self.baggage_member, body_keys=self.body_keys,
                                 policy=IdPolicy(max_length=self.id_max_length))

    @property
    def retry(self) -> Backoff:
        return Backoff(self.retry_initial_s, self.retry_max_s)

    def check(self) -> EnrichConfig:
        """Raise ConfigError naming the field when a combination cannot work."""
        if not self.attribute_keys:
            raise ConfigError("enrich.attribute_keys: needs at least one key")
        if any(not name.strip() for name in (*self.attribute_keys, *self.header_names, *self.body_keys)):
            raise ConfigError("enrich.header_names: names must not be blank")
        if self.retry_initial_s > self.retry_max_s:
            raise ConfigError("enrich.retry_initial_s: must be <= enrich.retry_max_s")
        return self
