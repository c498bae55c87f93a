"""OTLP/HTTP: POST /v1/traces, /v1/logs, /v1/metrics (protobuf or JSON, gzip), /metrics, /healthz."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import zlib
from collections.abc import Callable, Iterator
from functools import partial

import uvicorn
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.gateway.auth import Authenticator
from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ListenError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from pipeline.gateway.handler import Encoding, ExportHandler, decode_request
from pipeline.gateway.logic import Signal
from schemas.otlp_json import to_otlp_json

log = logging.getLogger(__name__)
PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
_MEDIA_TYPES: dict[str, Encoding] = {
    "application/x-protobuf": "protobuf", "application/protobuf": "protobuf",
    "application/json": "json",
}
_CONTENT_TYPES: dict[Encoding, str] = {"protobuf": "application/x-protobuf", "json": "application/json"}
# An oversize body is read to its end (and dropped) so the client sees the 413 instead of a
# reset connection; past this much the connection is cut instead.
_DRAIN_MAX_BYTES = 64 * 1024 * 1024
_START_TIMEOUT_S = 10.0


def _encoding_of(content_type: str) -> Encoding | None:
    return _MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


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
    return out


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The raw body; RequestTooLargeError when it is over ``limit_bytes``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit_bytes:
            chunks.append(chunk)
        elif size > _DRAIN_MAX_BYTES:
            break
    if size > limit_bytes:
        raise RequestTooLargeError(f"the request body is larger than {limit_bytes} bytes")
    return b"".join(chunks)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside a running loop: whoever owns the process handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """The OTLP/HTTP endpoints plus /metrics and /healthz, served by uvicorn in this loop."""

    def __init__(self, config: GatewayConfig, handler: ExportHandler, auth: Authenticator,
                 healthy: Callable[[], bool]) -> None:
        self._config = config
        self._handler = handler
        self._auth = auth
        self._healthy = healthy
        self._server: _EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        self.app = self._create_app()

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
            if encoding is None:
                raise UnsupportedMediaTypeError(
                    f"Content-Type {request.headers.get('content-type', '')!r} is not supported: "
                    "use application/x-protobuf or application/json")
            body = await read_body(request, self._config.max_request_bytes)
            body = decompress(body, request.headers.get("content-encoding", ""),
                              self._config.max_request_bytes)
            message = decode_request(signal, body, encoding)
            return encode_message(await self._handler.export(signal, message, tenant), encoding)
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
        return Response(self._handler.metrics.exposition(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def _health(self, request: Request) -> Response:
        ok = self._healthy()
        return JSONResponse({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)

    async def start(self, grace_s: float) -> int:
        """Listen and serve in this loop; return the bound port. Raises ListenError."""
        sock = _bind(self._config.host, self._config.http_port)
        config = uvicorn.Config(self.app, log_config=None, log_level="warning", lifespan="off",
                                access_log=False, server_header=False,
                                timeout_graceful_shutdown=max(1, math.ceil(grace_s)))
        server = _EmbeddedUvicorn(config)
        self._server, self.port = server, sock.getsockname()[1]
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="ollystack-otlp-http")
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT_S
        while not server.started:
            if self._task.done():
                failure = None if self._task.cancelled() else self._task.exception()
                self._server = self._task = None
                raise ListenError(f"otlp.http_port: uvicorn failed on port {self.port}: {failure!r}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise ListenError(f"otlp.http_port: uvicorn did not start on port {self.port}")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace given to start)."""
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is None or task is None:
            return
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"otlp.http_port: cannot listen on {host}:{port}: {exc}") from exc
    return sock


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = status_pb2.Status(code=_GRPC_CODES.get(exc.status_code, 2), message=str(exc.detail))
    return Response(to_otlp_json(status), exc.status_code, headers=exc.headers,
                    media_type="application/json")


# UNIMPLEMENTED for unknown paths and methods, as the Collector maps them.
_GRPC_CODES = {404: 12, 405: 12}
