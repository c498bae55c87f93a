"""One export request from any protocol: decode, tag the tenant, split, produce, answer."""
from __future__ import annotations

from typing import Any, Literal

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from core.errors import DecodeError
from core.types import Signal
from pipeline.gateway.budget import RequestMemory
from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.errors import GatewayError, InvalidRequestError
from pipeline.gateway.logic import (
    SHAPES,
    SplitResult,
    apply_tenant,
    count_items,
    split_request,
)
from pipeline.gateway.metrics import GatewayMetrics
from pipeline.gateway.producer import RecordProducer
from schemas.otlp_json import parse_otlp_json

Encoding = Literal["protobuf", "json"]
Protocol = Literal["grpc", "http"]

Response = (trace_pb.ExportTraceServiceResponse | logs_pb.ExportLogsServiceResponse
            | metrics_pb.ExportMetricsServiceResponse)
_RESPONSES: dict[Signal, tuple[type[Response], str]] = {
    "traces": (trace_pb.ExportTraceServiceResponse, "rejected_spans"),
    "logs": (logs_pb.ExportLogsServiceResponse, "rejected_log_records"),
    "metrics": (metrics_pb.ExportMetricsServiceResponse, "rejected_data_points"),
}


def decode_request(signal: Signal, body: bytes, encoding: Encoding) -> Any:
    """The export request of ``signal`` in ``body``; InvalidRequestError when undecodable."""
    request_type = SHAPES[signal].request_type
    try:
        if encoding == "json":
            return parse_otlp_json(body, request_type)
        return request_type.FromString(body)
    except DecodeError as exc:
        raise InvalidRequestError(f"cannot decode the {signal} request: {exc}") from None
    except (ProtobufDecodeError, RecursionError) as exc:
        raise InvalidRequestError(
            f"cannot decode the {signal} request as OTLP protobuf: {exc}") from None


def build_response(signal: Signal, split: SplitResult | None = None) -> Response:
    """The Export*ServiceResponse; partial_success is set only when items were rejected."""
    response_type, rejected_field = _RESPONSES[signal]
    response = response_type()
    if split is not None and split.rejected_items:
        # Every Export*ServiceResponse has a partial_success; only the count's name differs.
        setattr(response.partial_success, rejected_field, split.rejected_items)
        response.partial_success.error_message = split.error_message
    return response


def reason_of(exc: GatewayError) -> str:
    """A short label for the rejected-items counter."""
    return type(exc).__name__.removesuffix("Error").lower()


class ExportHandler:
    """The protocol-independent part of the gateway."""

    def __init__(self, config: GatewayConfig, producer: RecordProducer, metrics: GatewayMetrics) -> None:
        self._config = config
        self._producer = producer
        self.metrics = metrics
        self.budget = producer.budget
        self._topics: dict[Signal, str] = {
            "traces": config.spans_topic, "logs": config.logs_topic, "metrics": config.metrics_topic,
        }

    async def export(self, signal: Signal, request: Any, tenant: str | None) -> Message:
        """Write ``request`` to the raw topic of ``signal`` and return the OTLP response.

        Returns only after Kafka acknowledged every record; items with invalid IDs are
        left out and reported as partial success. Raises GatewayError subclasses
        (OverloadedError, KafkaUnavailableError, ...) when nothing was accepted."""
        received = count_items(signal, request)
        self.metrics.received.labels(signal).inc(received)
        if tenant is not None:
            apply_tenant(signal, request, tenant)
        split = split_request(signal, request, self._config.max_record_bytes)
        if split.rejected_items:
            self.metrics.rejected.labels(signal, "invalid").inc(split.rejected_items)
        if split.records:
            try:
                await self._producer.produce(signal, self._topics[signal], split.records)
            except GatewayError as exc:
                self.metrics.rejected.labels(signal, reason_of(exc)).inc(split.accepted_items)
                raise
        self.metrics.accepted.labels(signal).inc(split.accepted_items)
        return build_response(signal, split)

    def request_memory(self) -> RequestMemory:
        """What a new request will hold, counted against otlp.max_inflight_bytes."""
        return RequestMemory(self.budget, self._config.retry_after_s)

    def count_request(self, signal: Signal, protocol: Protocol, code: str) -> None:
        self.metrics.requests.labels(signal, protocol, code).inc()
