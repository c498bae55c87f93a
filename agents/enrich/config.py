"""EnrichConfig: the enrich stage's frozen configuration and its checks."""
from __future__ import annotations

from dataclasses import dataclass, field

from agents.correlation import CorrelationConfig
from core.errors import ConfigError


@dataclass(frozen=True)
class EnrichConfig:
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    # Cardinality limits on metric point attributes (the aggregation keys of metrics).
    cardinality_max_values: int = 1000
    cardinality_window_s: float = 3600.0
    # Records are enriched in batches of up to batch_max_records, or what arrived within
    # batch_max_wait_s: the stored states of a batch's new traces are read in one query.
    # A query per record waited behind the sink's inserts (the embedded engine runs one
    # call at a time) and fell behind at 20 demo flows a second.
    batch_max_records: int = 500
    batch_max_wait_s: float = 0.05
    # A failed state lookup is retried (records are never dead-lettered for it).
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0

    def check(self) -> "EnrichConfig":
        """Raise ConfigError naming the field when a value cannot work."""
        if self.cardinality_max_values <= 0:
            raise ConfigError("enrich.cardinality_max_values: must be > 0")
        if self.cardinality_window_s <= 0:
            raise ConfigError("enrich.cardinality_window_s: must be > 0")
        if self.batch_max_records <= 0:
            raise ConfigError("enrich.batch_max_records: must be > 0")
        if self.batch_max_wait_s <= 0:
            raise ConfigError("enrich.batch_max_wait_s: must be > 0")
        if not 0 < self.retry_initial_s <= self.retry_max_s:
            raise ConfigError("enrich.retry_initial_s: must be > 0 and <= retry_max_s")
        if not self.correlation.attribute_keys:
            raise ConfigError("enrich.correlation.attribute_keys: needs at least one key")
        return self
