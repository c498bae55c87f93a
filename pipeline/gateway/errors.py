"""Gateway errors, each carrying the gRPC status and HTTP status a client receives."""
from __future__ import annotations

import grpc

from core.errors import OllyStackError


class GatewayError(OllyStackError):
    """An export request the gateway answers with an error instead of OK.

    ``retry_after_s`` is set on errors a client should retry later; the servers turn it
    into gRPC RetryInfo and an HTTP Retry-After header."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class InvalidRequestError(GatewayError):
    """Undecodable or invalid data: retrying the same bytes can never succeed."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class UnsupportedMediaTypeError(InvalidRequestError):
    """HTTP Content-Type or Content-Encoding the gateway does not speak."""

    http_status = 415


class RequestTooLargeError(GatewayError):
    """The request, before or after decompression, is over otlp.max_request_bytes.

    RESOURCE_EXHAUSTED without RetryInfo is not retried by OTLP clients, which is right:
    the same request will always be too large."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413


class UnauthenticatedError(GatewayError):
    """Auth is on and the request carries no known bearer token or API key."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class OverloadedError(GatewayError):
    """The gateway holds as many bytes of requests and records as otlp.max_inflight_bytes
    allows: back off and retry."""

    retriable = True
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429


class KafkaUnavailableError(GatewayError):
    """Kafka did not acknowledge every record of the request in time: retry later."""

    retriable = True
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503


