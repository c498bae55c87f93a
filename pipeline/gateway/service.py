"""The gateway process part: Kafka producer, gRPC and HTTP servers, started and stopped together."""
from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Literal

from core.errors import OllyStackError
from core.settings import Settings
from pipeline.gateway.auth import Authenticator
from pipeline.gateway.budget import ByteBudget
from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.grpc_server import GrpcServer
from pipeline.gateway.handler import ExportHandler
from pipeline.gateway.http_server import HttpServer
from pipeline.gateway.metrics import GatewayMetrics
from pipeline.gateway.producer import RecordProducer

_State = Literal["new", "starting", "running", "stopping", "stopped"]


class Gateway:
    """OTLP gRPC and HTTP in front of Kafka. ``start()``, then ``stop()``; or ``async with``."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        auth = Authenticator(config.auth_tokens)
        budget = ByteBudget(config.max_inflight_bytes, self.metrics.inflight_bytes)
        self._producer = RecordProducer(config, self.metrics, budget)
        handler = ExportHandler(config, self._producer, self.metrics)
        self._grpc = GrpcServer(config, handler, auth)
        self._http = HttpServer(config, handler, auth, healthy=lambda: self._state == "running")
        self._state: _State = "new"

    @property
    def grpc_port(self) -> int:
        """The bound gRPC port (the real one when 0 was configured); 0 before start."""
        return self._grpc.port

    @property
    def http_port(self) -> int:
        """The bound HTTP port (the real one when 0 was configured); 0 before start."""
        return self._http.port

    @property
    def grace_s(self) -> float:
        """How long stop() lets requests in flight finish: one ack timeout and a margin."""
        return self.config.ack_timeout_s + 1.0

    async def start(self) -> None:
        """Connect to Kafka, then listen on both ports.

        Raises BrokerUnavailableError when Kafka cannot be reached and ListenError when a
        port cannot be bound; nothing is left running then."""
        if self._state != "new":
            raise OllyStackError(f"a gateway starts once; this one is {self._state}")
        self._state = "starting"  # health answers 503 until both ports serve
        await self._producer.start()
        try:
            await self._grpc.start()
            await self._http.start(self.grace_s)
        except BaseException:
            await self._shutdown()
            raise
        self._state = "running"

    async def stop(self) -> None:
        """Stop gracefully: refuse new requests, let those in flight get their Kafka acks
        and answers (up to ``grace_s``), then flush and close the producer."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopping"
        await self._shutdown()

    async def _shutdown(self) -> None:
        await asyncio.gather(self._grpc.stop(self.grace_s), self._http.stop())
        await self._producer.stop(self.grace_s)
        self._state = "stopped"

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


def build_gateway(settings: Settings, bootstrap: str) -> Gateway:
    """A gateway for ``settings`` writing to the Kafka at ``bootstrap``; not started.

    The config is checked here, before anything runs: raises ConfigError naming the
    setting when a combination cannot work."""
    return Gateway(GatewayConfig.from_settings(settings, bootstrap))
