"""The worker role: the Faust app with every stream agent, started inside the running loop."""
from __future__ import annotations

import logging

import faust
from prometheus_client import CollectorRegistry

from agents.enrich.agent import EnrichStage
from agents.enrich.config import EnrichConfig
from agents.metrics import WorkerMetrics
from agents.score.agent import ScoreStage
from agents.score.config import ScoreConfig
from agents.sink.agent import SinkStage
from agents.sink.config import SinkConfig
from core.settings import Settings
from pipeline.app import create_app
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


class Worker:
    """A Faust app with the enrich, sink and score agents registered on it."""

    def __init__(self, settings: Settings, bootstrap: str, warehouse: Warehouse, *,
                 app_id: str = "ollystack", enrich: EnrichConfig | None = None, sink: SinkConfig | None = None,
                 score: ScoreConfig | None = None, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.app_id = app_id
        self.app: faust.App = create_app(settings, bootstrap, app_id)
        self.warehouse = warehouse
        self.metrics = WorkerMetrics(registry)
        self.enrich = EnrichStage(self.app, settings, enrich or EnrichConfig(), self.metrics, warehouse)
        self.sink = SinkStage(self.app, settings, warehouse, sink or SinkConfig.from_settings(settings.sink), self.metrics)
        self.agent_names = self.enrich.agent_names + self.sink.agent_names
        self.score: ScoreStage | None = None
        if settings.score.enabled:
            self.score = ScoreStage(self.app, settings, warehouse, score or ScoreConfig.from_settings(settings),
                                    self.metrics)
            self.agent_names += self.score.agent_names

    async def start(self) -> None:
        """Start consuming; returns once the app has joined its consumer group."""
        (self.settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
        await self.app.start()

    async def stop(self) -> None:
        """Stop the agents; Faust commits the offsets of acknowledged records on the way out."""
        await self.app.stop()


def build_worker(settings: Settings, bootstrap: str, warehouse: Warehouse, **options: object) -> Worker:
    """A Worker for ``settings``; stage configs are checked here, before any record flows.

    Raises ConfigError naming the field of a stage config that cannot work."""
    return Worker(settings, bootstrap, warehouse, **options)  # type: ignore[arg-type]
