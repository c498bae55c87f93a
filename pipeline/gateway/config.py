"""The gateway's frozen config, derived from the root Settings and checked at build."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.credentials import IngestToken
from core.errors import ConfigError
from core.settings import RECORD_OVERHEAD_BYTES, Compression, Settings
from pipeline.gateway.budget import DECODED_FACTOR


class GatewayConfig(BaseModel):
    """Everything the gateway reads, and nothing else; built by ``from_settings``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap: str
    host: str
    grpc_port: int
    http_port: int
    max_request_bytes: int
    max_inflight_bytes: int
    ack_timeout_s: float
    # The retry hint sent with UNAVAILABLE / 503 and RESOURCE_EXHAUSTED / 429.
    retry_after_s: float = 1.0
    # Secrets: their repr and dumps show '**********'.
    auth_tokens: tuple[IngestToken, ...] = ()
    spans_topic: str
    logs_topic: str
    metrics_topic: str
    client_id: str
    compression: Compression
    produce_timeout_s: float
    max_message_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings, bootstrap: str) -> GatewayConfig:
        """The gateway part of ``settings``; raises ConfigError naming a bad setting."""
        otlp, kafka, topics = settings.otlp, settings.kafka, settings.topics
        config = cls(
            bootstrap=bootstrap, host=settings.host,
            grpc_port=otlp.grpc_port, http_port=otlp.http_port,
            max_request_bytes=otlp.max_request_bytes, max_inflight_bytes=otlp.max_inflight_bytes,
            ack_timeout_s=otlp.ack_timeout_s, auth_tokens=otlp.auth_tokens,
            spans_topic=topics.spans, logs_topic=topics.logs, metrics_topic=topics.metrics,
            client_id=kafka.client_id, compression=kafka.compression,
            produce_timeout_s=kafka.produce_timeout_s, max_message_bytes=kafka.max_message_bytes,
        )
        config.check()
        return config

    @property
    def max_record_bytes(self) -> int:
        """The largest record value the splitter may produce."""
        return self.max_message_bytes - RECORD_OVERHEAD_BYTES

    def check(self) -> None:
        """Raise ConfigError for combinations that would fail at the first request."""
        if not self.bootstrap.strip():
            raise ConfigError("kafka.bootstrap: the gateway needs a Kafka bootstrap address")
        if self.max_request_bytes * (1 + DECODED_FACTOR) > self.max_inflight_bytes:
            raise ConfigError(
                f"otlp.max_request_bytes: {1 + DECODED_FACTOR} times it must fit in otlp.max_inflight_bytes "
                f"({self.max_request_bytes} * {1 + DECODED_FACTOR} > {self.max_inflight_bytes}): a request holds "
                "its body and its decoded form, and one of the allowed size could never be admitted")
        if self.grpc_port and self.grpc_port == self.http_port:
            raise ConfigError(f"otlp.grpc_port: equals otlp.http_port ({self.grpc_port})")
        if self.retry_after_s <= 0:
            raise ConfigError("retry_after_s: must be > 0")
