"""The OTLP gateway: gRPC and HTTP export requests into Kafka raw topics, acked only after Kafka."""
from __future__ import annotations

from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.service import Gateway, build_gateway

__all__ = ["Gateway", "GatewayConfig", "build_gateway"]
