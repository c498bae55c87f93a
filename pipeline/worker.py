"""The worker role: the Faust app with every stream agent, started inside the running loop."""
from __future__ import annotations

import logging

import faust

from pipeline.app import create_app
from pipeline.settings import Settings
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


class Worker:
    """A Faust app with the enrich, sink and score agents registered on it."""

    def __init__(self, settings: Settings, bootstrap: str, warehouse: Warehouse) -> None:
        self.settings = settings
        self.app_id = "ollystack"
        self.app: faust.App = create_app(settings, bootstrap, self.app_id)
        self.warehouse = warehouse
        self.agent_names: list[str] = []

    async def start(self) -> None:
        """Start consuming; returns once the app has joined its consumer group."""
        await self.app.start()

    async def stop(self) -> None:
        """Stop the agents; offsets of what was processed are committed by Faust on stop."""
        await self.app.stop()


def build_worker(settings: Settings, bootstrap: str, warehouse: Warehouse) -> Worker:
    """A Worker for ``settings``; stage configs are checked here, before any record flows."""
    return Worker(settings, bootstrap, warehouse)
