"""OTLP/HTTP: POST /v1/traces, /v1/logs, /v1/metrics (protobuf or JSON, gzip), /metrics, /healthz."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from collections.abc import Callable
from functools import partial

from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.exposition import metrics_response
from core.http_server import EmbeddedServer
from core.types import Signal
from pipeline.gateway.auth import Authenticator
from pipeline.gateway.budget import DECODED_FACTOR, RequestMemory
from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.errors import (
    GatewayError,
    InvalidRequestError,
    OverloadedError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from pipeline.gateway.handler import Encoding, ExportHandler, decode_request
from schemas.otlp_json import to_otlp_json

log = logging.getLogger(__name__)
PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
_MEDIA_TYPES: dict[str, Encoding] = {
    "application/x-protobuf": "protobuf", "application/protobuf": "protobuf",
    "application/json": "json",
}
_CONTENT_TYPES: dict[Encoding, str] = {"protobuf": "application/x-protobuf", "json": "application/json"}
# An oversize body is read to its end and dropped, so the client has sent all of it and
# reads the 413: HTTP/1.1 clients (the SDKs' requests, urllib3) send the whole body before
# reading any answer, and a connection closed with unread data is reset, which they retry.
# Past this long the connection is cut instead; the memory held stays one chunk.
_DRAIN_MAX_S = 60.0


def _encoding_of(content_type: str) -> Encoding | None:
    return _MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def _supported(encoding: Encoding | None, content_type: str) -> Encoding:
    if encoding is None:
        raise UnsupportedMediaTypeError(f"Content-Type {content_type!r} is not supported: "
                                        "use application/x-protobuf or application/json")
    return encoding


def encode_message(message: Message, encoding: Encoding, status_code: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    body = to_otlp_json(message) if encoding == "json" else message.SerializeToString()
    return Response(body, status_code, headers=headers, media_type=_CONTENT_TYPES[encoding])


def error_response(exc: GatewayError, encoding: Encoding) -> Response:
    """A google.rpc.Status in the request's encoding; Retry-After when a retry helps."""
    status = status_pb2.Status(code=exc.grpc_code.value[0], message=exc.message)
    headers = {}
    if exc.retry_after_s is not None:
        status.details.add().Pack(error_details_pb2.RetryInfo(
            retry_delay={"seconds": math.ceil(exc.retry_after_s)}))
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if isinstance(exc, RequestTooLargeError):
        # The same connection must not carry the client's next request: what it sent may
        # not all have been read.
        headers["Connection"] = "close"
    return encode_message(status, encoding, exc.http_status, headers)


def decompress(body: bytes, content_encoding: str, limit_bytes: int) -> bytes:
    """The body after Content-Encoding, never more than ``limit_bytes`` of it."""
    name = content_encoding.strip().lower()
    if name in ("", "identity"):
        return body
    if name not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaTypeError(f"Content-Encoding {name!r} is not supported: use gzip or none")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if "gzip" in name else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit_bytes + 1)
    except zlib.error as exc:
        raise InvalidRequestError(f"the body is not valid {name}: {exc}") from None
    if len(out) > limit_bytes:
        raise RequestTooLargeError(f"the decompressed body is larger than {limit_bytes} bytes")
    if not inflater.eof:
        raise InvalidRequestError(f"the {name} body is truncated")
    if inflater.unused_data:
        raise InvalidRequestError(f"the {name} body has {len(inflater.unused_data)} bytes after its end")
    return out


async def read_body(request: Request, limit_bytes: int, memory: RequestMemory) -> bytes:
    """The raw body, each chunk held in ``memory`` as it arrives. RequestTooLargeError when it
    is over ``limit_bytes``, OverloadedError when the gateway cannot hold it now; either way
    after reading and dropping the rest of it (for at most _DRAIN_MAX_S)."""
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    refusal: GatewayError | None = None
    async for chunk in stream:
        size += len(chunk)
        if size > limit_bytes:
            refusal = RequestTooLargeError(f"the request body is larger than {limit_bytes} bytes")
            break
        try:
            memory.take(len(chunk), "the request body")
        except OverloadedError as exc:
            refusal = exc
            break
        chunks.append(chunk)
    if refusal is None:
        return b"".join(chunks)
    chunks.clear()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DRAIN_MAX_S):
            async for _ in stream:
                pass
    raise refusal


class HttpServer:
    """The OTLP/HTTP endpoints plus /metrics and /healthz, served by uvicorn in this loop."""

    def __init__(self, config: GatewayConfig, handler: ExportHandler, auth: Authenticator,
                 healthy: Callable[[], bool]) -> None:
        self._config = config
        self._handler = handler
        self._auth = auth
        self._healthy = healthy
        self.app = self._create_app()
        self._server: EmbeddedServer | None = None
        self.port = 0

    def _create_app(self) -> Starlette:
        routes = [Route(path, partial(self._export, signal), methods=["POST"])
                  for path, signal in PATHS.items()]
        routes += [Route("/metrics", self._metrics, methods=["GET"]),
                   Route("/healthz", self._health, methods=["GET"])]
        return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})

    async def _export(self, signal: Signal, request: Request) -> Response:
        encoding = _encoding_of(request.headers.get("content-type", ""))
        code = "OK"
        try:
            tenant = self._auth.tenant_for(request.headers)
            supported = _supported(encoding, request.headers.get("content-type", ""))
            with self._handler.request_memory() as memory:
                body = await read_body(request, self._config.max_request_bytes, memory)
                body = decompress(body, request.headers.get("content-encoding", ""),
                                  self._config.max_request_bytes)
                memory.take(DECODED_FACTOR * len(body), "the decoded request")
                message = decode_request(signal, body, supported)
                return encode_message(await self._handler.export(signal, message, tenant), supported)
        except GatewayError as exc:
            code = exc.grpc_code.name
            return error_response(exc, encoding or "json")
        except asyncio.CancelledError:  # the client went away, or stop() ran out of grace
            code = "CANCELLED"
            raise
        except Exception:  # a bug must not kill the server: answer 500 and log it
            code = "INTERNAL"
            log.exception("unexpected error in HTTP %s export", signal)
            return error_response(GatewayError("internal error"), encoding or "json")
        finally:
            self._handler.count_request(signal, "http", code)

    async def _metrics(self, request: Request) -> Response:
        return metrics_response(self._handler.metrics.registry, request)

    async def _health(self, request: Request) -> Response:
        ok = self._healthy()
        return JSONResponse({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)

    async def start(self, grace_s: float) -> int:
        """Listen and serve in this loop; return the bound port. Raises ListenError."""
        self._server = EmbeddedServer(self.app, self._config.host, self._config.http_port, "otlp.http_port",
                                      grace_s=grace_s)
        self.port = await self._server.start()
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace given to start)."""
        if self._server is not None:
            await self._server.stop()


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # registered for HTTPException alone
        raise exc
    status = status_pb2.Status(code=_GRPC_CODES.get(exc.status_code, 2), message=str(exc.detail))
    return Response(to_otlp_json(status), exc.status_code, headers=exc.headers,
                    media_type="application/json")


# UNIMPLEMENTED for unknown paths and methods, as the Collector maps them.
_GRPC_CODES = {404: 12, 405: 12}
