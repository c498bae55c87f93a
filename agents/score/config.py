"""ScoreConfig: the score stage's frozen configuration and its checks."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from core.errors import ConfigError


@dataclass(frozen=True)
class ScoreConfig:
    # Tumbling event-time windows; a window closes once every live partition's event
    # time is past its end plus the allowed lateness.
    window_s: int = 60
    lateness_s: float = 10.0
    # A partition that delivered nothing for this long (wall clock) stops holding the
    # watermark back, so one quiet partition cannot stall scoring.
    idle_partition_s: float = 30.0
    # Detector: robust z-scores of each feature against the median and IQR of the last
    # history_windows learned windows; see agents/score/detector.py for the measurements.
    history_windows: int = 30
    min_history_windows: int = 10
    min_spans: int = 10  # fewer spans in a window: latency and error rate are not scored
    z_half: float = 4.0  # the z-score that maps to a score of 0.5
    latency_floor_ratio: float = 0.10  # latency sigma >= a 10 % change (latency is scored in log space)
    latency_floor_ms: float = 1.0  # latencies under this count as this: sub-millisecond jitter is no anomaly
    error_rate_floor: float = 0.01  # the baseline error rate is taken as at least this for the binomial tail
    throughput_floor_ratio: float = 0.10
    max_frozen_windows: int = 30  # anomalous windows in a row after which a new level is learned
    # Alerts: `fire_windows` windows in a row at or above `threshold` fire; `resolve_windows`
    # below it resolve.
    threshold: float = 0.5
    critical_threshold: float = 0.9
    fire_windows: int = 2
    resolve_windows: int = 3
    # Bounded state: distinct services per tenant and operations per service, tracked over
    # cardinality_window_s (event time); the rest share the "__overflow__" key.
    max_tenants: int = 100
    max_services: int = 500
    max_operations: int = 100
    cardinality_window_s: float = 3600.0
    # Records of open windows are acknowledged when their windows are stored; past this
    # many held records the oldest are acknowledged early (and counted) to bound memory.
    max_held_records: int = 100_000
    # Links in alerts: lookups and the generator URL point at this API base.
    api_url: str = "http://127.0.0.1:8080"
    # Optional Alertmanager (POST {alertmanager_url}/api/v2/alerts); empty: off.
    alertmanager_url: str = ""
    alertmanager_retries: int = 5
    alertmanager_timeout_s: float = 5.0
    retry_initial_s: float = 0.2
    retry_max_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> "ScoreConfig":
        """The config of a root Settings: its ``score`` section when it has one (fields not
        named here are ignored), links to the API at host:api.port unless api_url is set."""
        known = {f.name for f in fields(cls)}
        section = getattr(settings, "score", None)
        values = {} if section is None else {k: v for k, v in section.model_dump().items() if k in known and v != ""}
        values.setdefault("api_url", f"http://{settings.host}:{settings.api.port}")
        return cls(**values).check()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "ScoreConfig":
        """A config from plain values (a settings section); ConfigError names unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"score.{unknown[0]}: unknown setting")
        return cls(**dict(values)).check()

    def check(self) -> "ScoreConfig":
        """Raise ConfigError naming the field when a value cannot work."""
        positive = ("window_s", "history_windows", "min_history_windows", "min_spans", "fire_windows",
                    "resolve_windows", "max_tenants", "max_services", "max_operations", "max_held_records",
                    "max_frozen_windows", "alertmanager_retries")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"score.{name}: must be > 0")
        for name in ("z_half", "idle_partition_s", "cardinality_window_s", "alertmanager_timeout_s",
                     "latency_floor_ms", "latency_floor_ratio", "error_rate_floor", "throughput_floor_ratio"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"score.{name}: must be a finite number > 0")
        if not (math.isfinite(self.lateness_s) and self.lateness_s >= 0):
            raise ConfigError("score.lateness_s: must be >= 0")
        if self.min_history_windows > self.history_windows:
            raise ConfigError("score.min_history_windows: must be <= history_windows")
        if not 0 < self.threshold < 1:
            raise ConfigError("score.threshold: must be between 0 and 1")
        if not self.threshold <= self.critical_threshold <= 1:
            raise ConfigError("score.critical_threshold: must be from threshold to 1")
        if not 0 < self.retry_initial_s <= self.retry_max_s:
            raise ConfigError("score.retry_initial_s: must be > 0 and <= retry_max_s")
        for name in ("api_url", "alertmanager_url"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise ConfigError(f"score.{name}: must be an http:// or https:// URL")
        if not self.api_url:
            raise ConfigError("score.api_url: must be an http:// or https:// URL")
        return self

    @property
    def window_ns(self) -> int:
        return self.window_s * 1_000_000_000
