"""IngestConfig: the enrich rules and sink batching of the settings, checked as a whole."""
from __future__ import annotations

from functools import cached_property

from pydantic import BaseModel, ConfigDict

from agents.correlation import CorrelationConfig
from agents.validation import IdPolicy
from core.errors import ConfigError
from core.settings import EnrichSettings, KafkaSettings, Settings, SinkSettings
from sinks.retry import Backoff


class IngestConfig(BaseModel):
    """The ingest stage's frozen config: where correlation IDs come from and the limits on
    attributes (``enrich``), how records are batched and inserts retried (``sink``), and
    the largest enriched record the topic takes (from kafka.max_message_bytes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enrich: EnrichSettings = EnrichSettings()
    sink: SinkSettings = SinkSettings()
    max_record_bytes: int = KafkaSettings().max_value_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestConfig:
        """The config of ``settings``; raises ConfigError naming a field that cannot work."""
        return cls(enrich=settings.enrich, sink=settings.sink,
                   max_record_bytes=settings.kafka.max_value_bytes).check()

    @cached_property
    def correlation(self) -> CorrelationConfig:
        """Where incoming IDs are looked for, and the policy they must satisfy."""
        e = self.enrich
        return CorrelationConfig(attribute_keys=e.attribute_keys, header_names=e.header_names,
                                 baggage_member=e.baggage_member, body_keys=e.body_keys,
                                 policy=IdPolicy(max_length=e.id_max_length))

    @property
    def state_retry(self) -> Backoff:
        """How a failed trace-state lookup is retried (records wait, unacknowledged)."""
        return Backoff(self.enrich.retry_initial_s, self.enrich.retry_max_s)

    @property
    def insert_retry(self) -> Backoff:
        """How an insert ClickHouse cannot take now is retried."""
        return Backoff(self.sink.retry_initial_s, self.sink.retry_max_s)

    def check(self) -> IngestConfig:
        """Raise ConfigError naming the field when a combination cannot work."""
        e, s = self.enrich, self.sink
        if not e.attribute_keys:
            raise ConfigError("enrich.attribute_keys: needs at least one key")
        if any(not name.strip() for name in (*e.attribute_keys, *e.header_names, *e.body_keys)):
            raise ConfigError("enrich.header_names: names must not be blank")
        if e.retry_initial_s > e.retry_max_s:
            raise ConfigError("enrich.retry_initial_s: must be <= enrich.retry_max_s")
        if s.retry_initial_s > s.retry_max_s:
            raise ConfigError("sink.retry_initial_s: must be <= sink.retry_max_s")
        return self
