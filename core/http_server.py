"""Serving an ASGI app with uvicorn inside the running event loop (the gateway's OTLP/HTTP
port and the query API share this)."""
from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from core.errors import ListenError

START_TIMEOUT_S = 10.0


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside a running loop: whoever owns the process handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int, setting: str) -> socket.socket:
    """A listening-ready TCP socket on host:port (0: any free port); ListenError naming
    ``setting`` when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"{setting}: cannot listen on {host}:{port}: {exc}") from exc
    return sock


class EmbeddedServer:
    """One ASGI app on one port, served by uvicorn as a task of this loop."""

    def __init__(self, app: Any, host: str, port: int, setting: str, *, grace_s: float = 5.0,
                 **uvicorn_options: Any) -> None:
        self._app, self._host, self._port, self._setting = app, host, port, setting
        self._grace_s = grace_s
        self._options = uvicorn_options
        self._server: _EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        """Listen and serve; return the bound port once uvicorn accepts connections.

        Raises ListenError when the port cannot be bound or uvicorn does not start within
        START_TIMEOUT_S; nothing is left running then."""
        sock = bind(self._host, self._port, self._setting)
        config = uvicorn.Config(self._app, log_config=None, log_level="warning", lifespan="off", access_log=False,
                                server_header=False, timeout_graceful_shutdown=max(1, math.ceil(self._grace_s)),
                                **self._options)
        server = _EmbeddedUvicorn(config)
        self._server, self.port = server, int(sock.getsockname()[1])
        task = self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn:{self._setting}")
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        while not server.started:
            if task.done():
                failure = None if task.cancelled() else task.exception()
                self._server = self._task = None
                sock.close()
                raise ListenError(f"{self._setting}: the HTTP server failed on port {self.port}: {failure!r}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise ListenError(f"{self._setting}: the HTTP server did not start on port {self.port}")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace given), then return."""
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is None or task is None:
            return
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
