"""OTLP/gRPC: the TraceService, LogsService and MetricsService Export methods on grpc.aio."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from core.errors import ListenError
from core.types import Signal
from pipeline.gateway.auth import Authenticator
from pipeline.gateway.budget import DECODED_FACTOR
from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.errors import GatewayError
from pipeline.gateway.handler import ExportHandler, decode_request

log = logging.getLogger(__name__)
RESPONSE_MAX_BYTES = 4 * 1024 * 1024  # the OTLP spec's recommended response cap

SERVICE_NAMES: dict[Signal, str] = {
    "traces": trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
    "logs": logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name,
    "metrics": metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name,
}
_Metadata = tuple[tuple[str, bytes], ...]


def error_trailers(exc: GatewayError) -> _Metadata:
    """Trailing metadata for an error: the google.rpc.Status in ``grpc-status-details-bin``
    (RetryInfo among its details when a retry helps) and RetryInfo alone in
    ``google.rpc.retryinfo-bin``, the key the OpenTelemetry Python exporter reads."""
    status = status_pb2.Status(code=exc.grpc_code.value[0], message=exc.message)
    trailers: list[tuple[str, bytes]] = []
    if exc.retry_after_s is not None:
        whole = int(exc.retry_after_s)
        delay = Duration(seconds=whole, nanos=int((exc.retry_after_s - whole) * 1e9))
        info = error_details_pb2.RetryInfo(retry_delay=delay)
        status.details.add().Pack(info)
        trailers.append(("google.rpc.retryinfo-bin", info.SerializeToString()))
    trailers.insert(0, ("grpc-status-details-bin", status.SerializeToString()))
    return tuple(trailers)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """A grpc.aio server with the three OTLP services; requests arrive as raw bytes so
    undecodable ones get INVALID_ARGUMENT with a message instead of grpc's INTERNAL."""

    def __init__(self, config: GatewayConfig, handler: ExportHandler, auth: Authenticator) -> None:
        self._config = config
        self._handler = handler
        self._auth = auth
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        """Listen and serve; return the bound port. Raises ListenError."""
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", self._config.max_request_bytes),
            ("grpc.max_send_message_length", RESPONSE_MAX_BYTES),
            # grpc sets SO_REUSEPORT by default, which would let a second gateway bind the
            # same port silently and steal half the connections.
            ("grpc.so_reuseport", 0),
        ])
        handlers = [
            grpc.method_handlers_generic_handler(
                name, {"Export": grpc.unary_unary_rpc_method_handler(self._method(signal))})
            for signal, name in SERVICE_NAMES.items()
        ]
        server.add_generic_rpc_handlers(handlers)
        address = _address(self._config.host, self._config.grpc_port)
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ListenError(f"otlp.grpc_port: cannot listen on {address}: {exc}") from exc
        await server.start()
        self._server = server
        return self.port

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let calls in flight finish for up to ``grace_s``."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace_s)

    def _method(self, signal: Signal) -> Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]:
        async def export(body: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            code = "OK"
            try:
                metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
                tenant = self._auth.tenant_for(metadata)
                with self._handler.request_memory() as memory:
                    # grpc has read (and inflated) the whole message before this runs.
                    memory.take((1 + DECODED_FACTOR) * len(body), "the request")
                    request = decode_request(signal, body, "protobuf")
                    response = await self._handler.export(signal, request, tenant)
                    return response.SerializeToString()
            except GatewayError as exc:
                code = exc.grpc_code.name
                await context.abort(exc.grpc_code, exc.message, trailing_metadata=error_trailers(exc))
            except asyncio.CancelledError:  # the client went away, or stop() ran out of grace
                code = "CANCELLED"
                raise
            except Exception:  # a bug must not kill the server: answer INTERNAL and log it
                code = "INTERNAL"
                log.exception("unexpected error in gRPC %s export", signal)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                self._handler.count_request(signal, "grpc", code)
            raise AssertionError("unreachable: context.abort raises")

        return export
