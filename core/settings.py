"""One root settings object, read from OLLYSTACK_* variables and an optional TOML file."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from core.errors import ConfigError

Compression = Literal["gzip", "snappy", "lz4", "zstd", "none"]

ENV_PREFIX = "OLLYSTACK_"
Port = Field(ge=0, le=65535)


class _Section(BaseModel):
    # Frozen so a stage cannot change its config after build(); forbid so a typo in
    # the config file is an error instead of a silently ignored key.
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap: str = ""  # empty: start the local broker
    client_id: str = "ollystack"
    local_port: int = Field(default=9092, ge=0, le=65535)  # 0: any free port
    # Producer compression of every topic OllyStack writes (the codecs Kafka and the
    # Collector's Kafka exporter support; aiokafka does snappy, lz4 and zstd through cramjam).
    # zstd: measured with benchmarks/gateway_throughput.py, the gateway accepts 93k spans/s
    # with it against 65k with gzip (the raw producer 239k against 104k).
    compression: Compression = "zstd"
    produce_timeout_s: float = Field(default=10.0, gt=0)
    max_message_bytes: int = Field(default=8 * 1024 * 1024, gt=0)


class ClickHouseSettings(_Section):
    url: SecretStr = SecretStr("")  # empty: chDB in <data_dir>/chdb
    database: str = Field(default="default", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    traces_ttl_days: int = Field(default=0, ge=0)
    logs_ttl_days: int = Field(default=0, ge=0)
    metrics_ttl_days: int = Field(default=0, ge=0)
    exemplars_ttl_days: int = Field(default=30, ge=0)
    correlation_ttl_days: int = Field(default=0, ge=0)


class OtlpSettings(_Section):
    grpc_port: int = Field(default=4317, ge=0, le=65535)
    http_port: int = Field(default=4318, ge=0, le=65535)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    max_inflight_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    ack_timeout_s: float = Field(default=10.0, gt=0)
    # token -> tenant; empty: auth off. Given as "token1=tenant1,token2=tenant2" in the env.
    auth_tokens: dict[str, str] = Field(default_factory=dict)

    @field_validator("auth_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs = [p.strip() for p in value.split(",") if p.strip()]
            parsed = dict(p.split("=", 1) for p in pairs if "=" in p)
            if len(parsed) != len(pairs):
                raise ValueError("expected token=tenant pairs separated by commas")
            return parsed
        return value


class ApiSettings(_Section):
    port: int = Field(default=8080, ge=0, le=65535)


class TopicSettings(_Section):
    spans: str = "otlp_spans"
    logs: str = "otlp_logs"
    metrics: str = "otlp_metrics"
    enriched_spans: str = "ollystack.spans"
    enriched_logs: str = "ollystack.logs"
    enriched_metrics: str = "ollystack.metrics"
    alerts: str = "ollystack.alerts"
    deadletter: str = "ollystack.deadletter"
    partitions: int = Field(default=6, ge=1, le=10_000)
    replication: int = Field(default=1, ge=1, le=16)

    @field_validator(
        "spans", "logs", "metrics", "enriched_spans", "enriched_logs",
        "enriched_metrics", "alerts", "deadletter",
    )
    @classmethod
    def _topic_name(cls, value: str) -> str:
        # Kafka's own rule for legal topic names.
        if not value or len(value) > 249 or not all(c.isalnum() or c in "._-" for c in value):
            raise ValueError("a topic name is 1-249 characters of [A-Za-z0-9._-]")
        return value


class SinkSettings(_Section):
    batch_max_rows: int = Field(default=5000, gt=0)
    batch_max_age_s: float = Field(default=1.0, gt=0)


class ScoreSettings(_Section):
    # Off: this worker runs enrich and sink only. Scoring holds records of open windows
    # unacknowledged, and each worker scores only its own partitions.
    enabled: bool = True
    window_s: int = Field(default=60, ge=1)
    lateness_s: float = Field(default=10.0, ge=0)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    fire_windows: int = Field(default=2, ge=1)
    resolve_windows: int = Field(default=3, ge=1)
    alertmanager_url: str = ""  # empty: alerts go to the topic and the table only
    api_url: str = ""  # base of lookup links in alerts; empty: http://{host}:{api.port}


class Settings(_Section):
    host: str = "127.0.0.1"
    data_dir: Path = Path(".ollystack")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    otlp: OtlpSettings = OtlpSettings()
    api: ApiSettings = ApiSettings()
    topics: TopicSettings = TopicSettings()
    sink: SinkSettings = SinkSettings()
    score: ScoreSettings = ScoreSettings()

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data with every secret replaced by '**********'."""
        return self.model_dump(mode="json")


_SECTIONS = {name for name, f in Settings.model_fields.items()
             if isinstance(f.default, BaseModel)}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """OLLYSTACK_KAFKA_BOOTSTRAP -> {"kafka": {"bootstrap": ...}}; OLLYSTACK_HOST -> {"host": ...}."""
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
        section, _, field = name.partition("_")
        if section in _SECTIONS and field:
            tree.setdefault(section, {})[field] = value
        else:
            tree[name] = value
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _setting_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ENV_PREFIX + "_".join(parts).upper()


def _describe(err: ValidationError, data: dict[str, Any]) -> str:
    lines = []
    for item in err.errors():
        loc = item["loc"]
        name = _setting_name(loc)
        if item["type"] == "extra_forbidden":
            lines.append(f"{name}: unknown setting")
            continue
        value = item.get("input")
        shown = "<secret>" if "url" in loc or "auth_tokens" in loc else repr(value)
        lines.append(f"{name}={shown}: {item['msg']}")
    return "; ".join(lines)


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read defaults, then the TOML file (if given), then OLLYSTACK_* variables.

    Raises ConfigError naming each setting whose value is not allowed, its value and
    the rule it broke. Unknown OLLYSTACK_* variables are errors too: a typo must not
    silently fall back to a default.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"--config {config_file}: file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {config_file}: not valid TOML: {exc}") from exc
    data = _merge(data, _from_env(env))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data)) from None
