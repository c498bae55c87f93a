"""Serving the API with uvicorn inside an already running event loop."""
from __future__ import annotations

from api.app import create_app
from core.http_server import EmbeddedServer
from core.settings import Settings
from sinks.warehouse import Warehouse


class ApiServer:
    """The query API on settings.api.port (0: any free port; ``port`` is the bound one)."""

    def __init__(self, settings: Settings, warehouse: Warehouse) -> None:
        self.app = create_app(settings, warehouse)
        self._server = EmbeddedServer(self.app, settings.host, settings.api.port, "api.port")
        self.port = settings.api.port

    async def start(self) -> None:
        """Listen and serve; raises ListenError naming api.port when the port is taken."""
        self.port = await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
