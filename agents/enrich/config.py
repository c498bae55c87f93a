"""EnrichConfig: the enrich stage's frozen configuration and its checks."""
from __future__ import annotations

from dataclasses import dataclass, field

from agents.correlation import CorrelationConfig
from pipeline.errors import ConfigError


@dataclass(frozen=True)
class EnrichConfig:
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    # Cardinality limits on metric point attributes (the aggregation keys of metrics).
    cardinality_max_values: int = 1000
    cardinality_window_s: float = 3600.0

    def check(self) -> "EnrichConfig":
        """Raise ConfigError naming the field when a value cannot work."""
        if self.cardinality_max_values <= 0:
            raise ConfigError("enrich.cardinality_max_values: must be > 0")
        if self.cardinality_window_s <= 0:
            raise ConfigError("enrich.cardinality_window_s: must be > 0")
        if not self.correlation.attribute_keys:
            raise ConfigError("enrich.correlation.attribute_keys: needs at least one key")
        return self
