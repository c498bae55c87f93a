"""ScoreConfig: the score section of the settings, checked as a whole, and what the stage derives."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, ValidationError

from core.errors import ConfigError
from core.settings import ScoreSettings, Settings
from sinks.retry import Backoff

PredictMetric = Literal["latency_p95_ms", "latency_p50_ms", "error_rate", "throughput"]
PREDICT_METRICS: tuple[PredictMetric, ...] = ("latency_p95_ms", "latency_p50_ms", "error_rate", "throughput")
# The window features the detector scores (agents/score/detector.py).
FEATURES = ("latency_p50", "latency_p95", "error_rate", "throughput")
_RULE = re.compile(r"^\s*([a-z0-9_]+)\s*([<>])\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class PredictRule:
    """Alert when a service's ``metric`` is forecast to cross ``threshold`` in ``direction``."""

    metric: PredictMetric
    direction: Literal["above", "below"]
    threshold: float

    @property
    def text(self) -> str:
        return f"{self.metric}{'>' if self.direction == 'above' else '<'}{self.threshold:g}"


def parse_predict_rule(text: str) -> PredictRule:
    """``latency_p95_ms>500`` or ``throughput<10``; ConfigError naming the rule otherwise."""
    match = _RULE.match(text)
    if match is None or match.group(1) not in PREDICT_METRICS:
        raise ConfigError(f"score.predict_rules: {text[:80]!r} is not METRIC>NUMBER or METRIC<NUMBER "
                          f"with METRIC one of {', '.join(PREDICT_METRICS)}")
    metric: Any = match.group(1)
    return PredictRule(metric, "above" if match.group(2) == ">" else "below", float(match.group(3)))


class ScoreConfig(ScoreSettings):
    """The score stage's frozen config: the ``score`` settings section, checked as a whole.

    Built directly (tests, benchmarks, the API's backtests) alert links point at the
    default API address; ``from_settings`` points them at the configured one."""

    api_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://\S+$")

    @classmethod
    def from_settings(cls, settings: Settings) -> ScoreConfig:
        """The config of ``settings.score``, links to http://{host}:{api.port} unless
        score.api_url is set. Raises ConfigError naming a field that cannot work."""
        values = settings.score.model_dump()
        values["api_url"] = values["api_url"] or f"http://{settings.host}:{settings.api.port}"
        return cls.of(**values)

    @classmethod
    def of(cls, **values: Any) -> ScoreConfig:
        """A checked config from field values; ConfigError names the first bad field."""
        try:
            config = cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"score.{field}: {first['msg']}") from None
        return config.check()

    def replace(self, **changes: Any) -> ScoreConfig:
        """A checked copy with ``changes``."""
        return self.of(**{**self.model_dump(), **changes})

    @property
    def window_ns(self) -> int:
        return self.window_s * 1_000_000_000

    @property
    def retry(self) -> Backoff:
        return Backoff(self.retry_initial_s, self.retry_max_s)

    @cached_property
    def predict(self) -> tuple[PredictRule, ...]:
        """The predicted-alert rules, parsed."""
        return tuple(parse_predict_rule(text) for text in self.predict_rules)

    def check(self) -> ScoreConfig:
        """Raise ConfigError naming the field when a combination cannot work."""
        if self.min_history_windows > self.history_windows:
            raise ConfigError("score.min_history_windows: must be <= score.history_windows")
        if self.critical_threshold < self.threshold:
            raise ConfigError("score.critical_threshold: must be from score.threshold to 1")
        unknown = sorted(set(self.two_sided) - set(FEATURES))
        if unknown:
            raise ConfigError(f"score.two_sided: {unknown[0]!r} is not one of {', '.join(FEATURES)}")
        if any(season <= 0 for season in self.seasons_s):
            raise ConfigError("score.seasons_s: every season must be > 0 seconds")
        if self.retry_initial_s > self.retry_max_s:
            raise ConfigError("score.retry_initial_s: must be <= score.retry_max_s")
        _ = self.predict  # ConfigError for a rule that does not parse
        return self
