"""SinkConfig: the sink section of the settings, checked as a whole."""
from __future__ import annotations

from core.errors import ConfigError
from core.settings import Settings, SinkSettings
from sinks.retry import Backoff


class SinkConfig(SinkSettings):
    """The sink stage's frozen config: batch limits in rows, records and age, and the
    backoff of a failed insert."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SinkConfig:
        """The config of ``settings.sink``; raises ConfigError naming a field that cannot work."""
        return cls.model_validate(settings.sink.model_dump()).check()

    @property
    def retry(self) -> Backoff:
        return Backoff(self.retry_initial_s, self.retry_max_s)

    def check(self) -> SinkConfig:
        """Raise ConfigError naming the field when a combination cannot work."""
        if self.retry_initial_s > self.retry_max_s:
            raise ConfigError("sink.retry_initial_s: must be <= sink.retry_max_s")
        return self
