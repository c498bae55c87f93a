"""SinkConfig: batch limits and retry backoff of the sink stage."""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError
from core.settings import SinkSettings


@dataclass(frozen=True)
class SinkConfig:
    batch_max_records: int = 500
    batch_max_age_s: float = 1.0
    retry_initial_s: float = 0.2
    retry_max_s: float = 30.0

    @classmethod
    def from_settings(cls, sink: SinkSettings) -> "SinkConfig":
        # Settings speak in rows; an enriched record holds about one export request's
        # worth of rows, so records are counted at a conservative 10 rows each.
        return cls(batch_max_records=max(1, sink.batch_max_rows // 10), batch_max_age_s=sink.batch_max_age_s).check()

    def check(self) -> "SinkConfig":
        """Raise ConfigError naming the field when a value cannot work."""
        if self.batch_max_records <= 0:
            raise ConfigError("sink.batch_max_records: must be > 0")
        if self.batch_max_age_s <= 0:
            raise ConfigError("sink.batch_max_age_s: must be > 0")
        if not 0 < self.retry_initial_s <= self.retry_max_s:
            raise ConfigError("sink.retry_initial_s: must be > 0 and <= retry_max_s")
        return self
