"""One root settings object, read from OLLYSTACK_* variables and an optional TOML file.

Every knob is declared once, here, with its type, default and constraint; a stage's config
(agents/<stage>/config.py) is built from its section and adds only what is derived or
checked across fields."""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.credentials import ApiKey, IngestToken, parse_api_keys, parse_ingest_tokens
from core.errors import ConfigError

Compression = Literal["gzip", "snappy", "lz4", "zstd", "none"]

ENV_PREFIX = "OLLYSTACK_"
RECORD_OVERHEAD_BYTES = 1024
# Values never shown in an error or a dump: the ClickHouse URL (it may hold a password) and
# every credential.
_SECRET_FIELDS = frozenset({"url", "auth_tokens", "keys", "api_key"})


def _split_csv(value: Any) -> Any:
    # An environment variable holds a list as "a,b,c"; a TOML file holds a real array.
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


NameList = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]


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
    # The largest record (key, value, headers) OllyStack writes; the broker's
    # message.max.bytes must allow it.
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)

    @property
    def max_value_bytes(self) -> int:
        """The largest record value: max_message_bytes less room for the key, headers and
        batch framing."""
        return self.max_message_bytes - RECORD_OVERHEAD_BYTES


class ClickHouseSettings(_Section):
    url: SecretStr = SecretStr("")  # empty: chDB in <data_dir>/chdb
    database: str = Field(default="default", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    traces_ttl_days: int = Field(default=0, ge=0)
    logs_ttl_days: int = Field(default=0, ge=0)
    metrics_ttl_days: int = Field(default=0, ge=0)
    exemplars_ttl_days: int = Field(default=30, ge=0)
    # Trace links and the correlation index: lookups of rows kept longer lose their links, so
    # unset they are kept as long as the longer-lived of traces and logs (0 = forever wins).
    correlation_ttl_days: int = Field(default=0, ge=0)
    # Anomaly windows and alerts describe spans: unset, they are kept as long as traces.
    anomalies_ttl_days: int = Field(default=0, ge=0)
    alerts_ttl_days: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _as_long_as_the_data(cls, data: Any) -> Any:
        if isinstance(data, dict):
            traces, logs = int(data.get("traces_ttl_days", 0)), int(data.get("logs_ttl_days", 0))
            linked = 0 if 0 in (traces, logs) else max(traces, logs)
            data = {"anomalies_ttl_days": traces, "alerts_ttl_days": traces, "correlation_ttl_days": linked, **data}
        return data


class OtlpSettings(_Section):
    grpc_port: int = Field(default=4317, ge=0, le=65535)
    http_port: int = Field(default=4318, ge=0, le=65535)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    max_inflight_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    ack_timeout_s: float = Field(default=10.0, gt=0)
    # Ingest tokens: who may write, and as which tenant. Empty: ingest auth off.
    # In the environment: "token1=tenant1,token2=tenant2".
    auth_tokens: tuple[IngestToken, ...] = ()

    @field_validator("auth_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        return parse_ingest_tokens(value)


class ApiSettings(_Section):
    port: int = Field(default=8080, ge=0, le=65535)
    # Read keys of the query API, apart from ingest tokens: "key=tenant[:viewer|admin],...".
    # Empty: the API is open, which is refused while ingest auth is on (api/app.py).
    keys: tuple[ApiKey, ...] = ()

    @field_validator("keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return parse_api_keys(value)


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
    # retention.ms of the raw topics: how far back `ollystack replay` can rebuild the
    # warehouse. Kafka's own default, 7 days; -1 keeps every record.
    raw_retention_ms: int = Field(default=7 * 86_400_000, ge=-1)

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

    @field_validator("raw_retention_ms")
    @classmethod
    def _retention(cls, value: int) -> int:
        # Shorter than a minute, the worker could lose records it has not read yet.
        if value != -1 and value < 60_000:
            raise ValueError("-1 (keep every record) or at least 60000 (one minute)")
        return value


class EnrichSettings(_Section):
    # Where an incoming correlation ID is looked for (agents/correlation.py has the order).
    attribute_keys: NameList = ("correlation_id",)
    header_names: NameList = ("X-Correlation-ID", "X-Request-ID")
    baggage_member: str = Field(default="correlation_id", min_length=1)
    body_keys: NameList = ("correlation_id", "correlationId", "request_id", "requestId")
    # Incoming IDs longer than this are rejected and replaced (the span is kept).
    id_max_length: int = Field(default=128, ge=8, le=1024)
    # Cardinality limits on metric point attributes (the series key of a metric): distinct
    # values per key seen within the window, and keys tracked at once.
    cardinality_max_values: int = Field(default=1000, gt=0)
    cardinality_window_s: float = Field(default=3600.0, gt=0)
    cardinality_max_keys: int = Field(default=10_000, gt=0)
    # Trace -> correlation states kept in memory: about a minute of traces at 3k traces/s,
    # enough to span the arrival of one trace's parts.
    trace_cache_traces: int = Field(default=200_000, gt=0)
    # A failed state lookup is retried (records are never dead-lettered for it).
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=10.0, gt=0)


class SinkSettings(_Section):
    # Raw records are read in batches of up to batch_max_records, or what arrived within
    # batch_max_age_s; the records of one take, every partition's, are decoded, enriched
    # and inserted as one batch of at most batch_max_bytes of raw records (each engine
    # batch costs a dozen calls whatever its size, and fewer, larger parts leave less to
    # merge: with decoding and inserting on two engine sessions, 16 MiB batches of 512-span
    # records ran at 22.0-24.9k spans/s against 14.8-21.9k for 8 MiB, RSS 1.40 against
    # 1.35 GB; benchmarks/ingest_pipeline.py). Under a light load a batch is what arrived
    # within batch_max_age_s, far below this. One insert holds at most
    # batch_max_rows rows (or one record's rows, when a record alone has more).
    batch_max_rows: int = Field(default=100_000, gt=0)
    batch_max_records: int = Field(default=2000, gt=0)
    batch_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    batch_max_age_s: float = Field(default=0.5, gt=0)
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)


class ScoreSettings(_Section):
    # Off: this worker runs enrich and sink only. Scoring holds records of open windows
    # unacknowledged, and each worker scores only its own partitions.
    enabled: bool = True
    # Tumbling event-time windows; a window closes once every live partition's event
    # time is past its end plus the allowed lateness.
    window_s: int = Field(default=60, ge=1)
    lateness_s: float = Field(default=10.0, ge=0)
    # A partition that delivered nothing for this long (wall clock) stops holding the
    # watermark back, so one quiet partition cannot stall scoring.
    idle_partition_s: float = Field(default=30.0, gt=0)
    # Detector (agents/score/detector.py): each feature against its learned level plus daily
    # and weekly profiles (seasons_s, in season_bins bins, learned from the series itself);
    # level and scale follow about history_windows learned windows. min_history_windows
    # learned windows make a baseline.
    history_windows: int = Field(default=30, gt=0)
    min_history_windows: int = Field(default=10, gt=0)
    min_spans: int = Field(default=10, gt=0)  # fewer spans in a window: latency and error rate are not scored
    seasons_s: tuple[int, ...] = (86_400, 604_800)  # empty: no seasonal profiles
    season_bins: int = Field(default=144, gt=0)  # bins of each season: 10 minutes of a day, 70 of a week
    # What a bin learns from one visit (one season later it is expected again).
    season_alpha: float = Field(default=0.5, gt=0, le=1, allow_inf_nan=False)
    # Features scored in both directions (a latency drop is as telling as a rise; fewer
    # errors are not); the others only upwards.
    two_sided: NameList = ("latency_p50", "latency_p95", "throughput")
    # Latency sigma >= a 10 % change (latency is scored in log space); latencies under
    # latency_floor_ms count as that much: sub-millisecond jitter is no anomaly.
    latency_floor_ratio: float = Field(default=0.10, gt=0, allow_inf_nan=False)
    latency_floor_ms: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    # The baseline error rate is taken as at least this for the binomial tail.
    error_rate_floor: float = Field(default=0.01, gt=0, allow_inf_nan=False)
    throughput_floor_ratio: float = Field(default=0.10, gt=0, allow_inf_nan=False)
    # The last evidence_windows windows are also scored together: a lasting shift or a
    # variance change too small to stand out in one window (1: off).
    evidence_windows: int = Field(default=4, ge=1)
    # A change lasting this many windows is a new level: learned, annotated once, no longer scored.
    max_frozen_windows: int = Field(default=30, gt=0)
    # Windows read back at a restart to rebuild the detectors (replayed exactly: the
    # rebuilt detector equals the live one when its key's whole life fits in them).
    restore_windows: int = Field(default=1440, gt=0)
    # Alerts: scores are surprises, -log10 of the tail probability of the window (6: p =
    # 1e-6). fire_windows windows in a row at or above threshold fire; resolve_windows
    # below it resolve. At or above critical_threshold the alert is critical.
    threshold: float = Field(default=6.0, gt=0, allow_inf_nan=False)
    critical_threshold: float = Field(default=12.0, gt=0, allow_inf_nan=False)
    fire_windows: int = Field(default=2, ge=1)
    resolve_windows: int = Field(default=3, ge=1)
    # Bounded state: distinct tenants, services per tenant and operations per service,
    # tracked over cardinality_window_s (event time); the rest share "__overflow__".
    max_tenants: int = Field(default=100, gt=0)
    max_services: int = Field(default=500, gt=0)
    max_operations: int = Field(default=100, gt=0)
    cardinality_window_s: float = Field(default=3600.0, gt=0, allow_inf_nan=False)
    # Records of open windows are acknowledged when their windows are stored; past this
    # many held records the oldest are acknowledged early (and counted) to bound memory.
    max_held_records: int = Field(default=100_000, gt=0)
    # Predicted alerts: "metric>threshold" or "metric<threshold" rules, e.g.
    # "latency_p95_ms>500,error_rate>0.05,throughput<10" (throughput: spans per window).
    # Every predict_every_windows windows the last predict_history_windows windows of the
    # predict_max_series busiest services are forecast predict_horizon_windows ahead
    # (Holt-Winters, agents/score/predict.py).
    predict_rules: NameList = ()
    predict_every_windows: int = Field(default=5, gt=0)
    predict_max_series: int = Field(default=100, gt=0)
    predict_history_windows: int = Field(default=120, ge=10)
    predict_horizon_windows: int = Field(default=30, gt=0)
    # Links in alerts point at this API base; empty: http://{host}:{api.port}.
    api_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    # Optional Alertmanager (POST {alertmanager_url}/api/v2/alerts); empty: off.
    alertmanager_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    alertmanager_retries: int = Field(default=5, gt=0)
    alertmanager_timeout_s: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)


class WorkerSettings(_Section):
    # The worker's own HTTP port: /metrics (Prometheus) and /healthz. The gateway serves
    # its metrics on the OTLP/HTTP port and the API on its own; 9464 is the port
    # OpenTelemetry's Prometheus exporters use. 0: any free port.
    metrics_port: int = Field(default=9464, ge=0, le=65535)


class RollupSettings(_Section):
    # The worker recomputes the per-minute rollups the API reads (sinks/rollups.py) every
    # interval_s, at most max_minutes dirty minutes a pass, oldest first. Marks younger than
    # margin_s are not counted as covered: their rows may not have been visible yet. A minute
    # still receiving spans is recomputed at most once per minute_interval_s (a recompute
    # reads all its spans, and its edges those of the minutes around it): the rollups of
    # the newest minute lag by up to that much, and each span is read about 3 times, not 18.
    # A pass's grouping and join of the spans of its minutes spill to disk past spill_mb.
    interval_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    minute_interval_s: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    max_minutes: int = Field(default=30, gt=0)
    margin_s: float = Field(default=5.0, ge=0, allow_inf_nan=False)
    spill_mb: int = Field(default=50, gt=0, le=1_000_000)


class LlmSettings(_Section):
    # The language model that explains computed findings and writes NLQ SQL (api/llm/):
    # any litellm model string ("openai/gpt-4o-mini", "ollama_chat/llama3.1",
    # "hosted_vllm/Qwen2.5-7B-Instruct"); empty: no model, explanations come from rules.
    model: str = Field(default="", max_length=256)
    # An OpenAI-compatible server (Ollama, vLLM, a gateway); empty: the provider's default.
    api_base: str = Field(default="", pattern=r"^(https?://\S+)?$")
    # Sent to the model's server alone; never logged, printed or answered.
    api_key: SecretStr = SecretStr("")
    timeout_s: float = Field(default=30.0, gt=0, le=600, allow_inf_nan=False)
    # Token budget of one call: the prompt is cut to max_prompt_tokens (estimated at four
    # characters a token, as no tokenizer is downloaded) and the answer capped.
    max_prompt_tokens: int = Field(default=6000, ge=512, le=1_000_000)
    max_completion_tokens: int = Field(default=1000, ge=16, le=100_000)
    # Chat: model calls per request (each may ask for tools) and tool calls per request.
    chat_max_turns: int = Field(default=6, ge=1, le=50)
    chat_max_tool_calls: int = Field(default=8, ge=0, le=100)
    # The NLQ guard's caps (api/nlq/guard.py): rows answered, and what one query may spend.
    nlq_max_rows: int = Field(default=1000, ge=1, le=100_000)
    nlq_max_execution_s: float = Field(default=10.0, gt=0, le=600, allow_inf_nan=False)
    nlq_max_memory_bytes: int = Field(default=1024 * 1024 * 1024, ge=16 * 1024 * 1024)


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
    enrich: EnrichSettings = EnrichSettings()
    sink: SinkSettings = SinkSettings()
    score: ScoreSettings = ScoreSettings()
    rollups: RollupSettings = RollupSettings()
    worker: WorkerSettings = WorkerSettings()
    llm: LlmSettings = LlmSettings()

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


def setting_name(loc: tuple[Any, ...]) -> str:
    """The OLLYSTACK_* variable of a validation error location."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ENV_PREFIX + "_".join(parts).upper()


def _describe(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        loc = item["loc"]
        name = setting_name(loc[:2])
        if item["type"] == "extra_forbidden":
            lines.append(f"{name}: unknown setting")
            continue
        shown = "<secret>" if _SECRET_FIELDS & {str(p) for p in loc} else repr(item.get("input"))
        # The message of a credential parser never holds the secret itself.
        lines.append(f"{name}={shown}: {item['msg']}")
    return "; ".join(lines)


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read defaults, then the TOML file (if given), then OLLYSTACK_* variables.

    Raises ConfigError naming each setting whose value is not allowed, its value and
    the rule it broke (never the value of a secret). Unknown OLLYSTACK_* variables are
    errors too: a typo must not silently fall back to a default."""
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
        raise ConfigError(_describe(exc)) from None
