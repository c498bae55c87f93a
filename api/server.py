"""Serving the API with uvicorn inside an already running event loop."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn

from api.app import create_app
from core.errors import OllyStackError
from core.settings import Settings
from sinks.warehouse import Warehouse


class EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that hosts it."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


async def serve_in_loop(app: Any, host: str, port: int) -> tuple[EmbeddedUvicorn, asyncio.Task[None], int]:
    """Start ``app`` on host:port (0 = any free port); return the server, its task and the bound port.

    Raises OllyStackError when the port cannot be bound."""
    server = EmbeddedUvicorn(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                            access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # surfaces the bind error, if any
            raise OllyStackError(f"HTTP server on {host}:{port} stopped while starting")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return server, task, int(bound)


class ApiServer:
    """The query API on settings.api.port."""

    def __init__(self, settings: Settings, warehouse: Warehouse) -> None:
        self.settings = settings
        self.app = create_app(settings, warehouse)
        self.port = settings.api.port
        self._server: EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            self._server, self._task, self.port = await serve_in_loop(
                self.app, self.settings.host, self.settings.api.port)
        except SystemExit as exc:  # uvicorn exits the process on a bind error
            raise OllyStackError(
                f"the query API cannot listen on {self.settings.host}:{self.settings.api.port} "
                "(port in use?); set OLLYSTACK_API_PORT") from exc

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
