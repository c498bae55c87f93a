"""The worker role: the Faust app with every stream stage, and the rollup refresh, started
inside the running loop."""
from __future__ import annotations

import gc

import faust
from prometheus_client import CollectorRegistry

from agents.ingest import agent as ingest
from agents.ingest.config import IngestConfig
from agents.metrics import WorkerMetrics
from agents.score import agent as score
from agents.score.config import ScoreConfig
from agents.stage import StageDeps, faust_dead_letters
from core.settings import Settings
from pipeline.app import create_app
from pipeline.consumer_lag import ConsumerLagCollector
from pipeline.rollup_refresher import RollupRefresher
from sinks.backend import open_engine
from sinks.warehouse import Warehouse

Stage = ingest.IngestStage | score.ScoreStage


class Worker:
    """A Faust app with the ingest and (when score.enabled) score stages on it, and the
    periodic refresh of the per-minute rollups the API reads."""

    def __init__(self, settings: Settings, app: faust.App, stages: list[Stage], metrics: WorkerMetrics,
                 app_id: str, rollups: RollupRefresher) -> None:
        self.settings, self.app, self.stages, self.metrics, self.app_id = settings, app, stages, metrics, app_id
        self.rollups = rollups
        self.agent_names = [name for stage in stages for name in stage.agent_names]

    @property
    def score(self) -> score.ScoreStage | None:
        """The score stage, when this worker runs one."""
        return next((s for s in self.stages if isinstance(s, score.ScoreStage)), None)

    def healthy(self) -> bool:
        """The app runs and was not asked to stop (a crashed agent stops it)."""
        return bool(self.app.started and not self.app.should_stop)

    async def start(self) -> None:
        """Start consuming; returns once the app has joined its consumer group."""
        (self.settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
        await self.app.start()
        # Everything allocated so far lives as long as the process: keep the cyclic
        # collector from walking it again on every pass (the hot path builds few objects
        # now, but Faust and aiokafka still make garbage per record).
        gc.freeze()
        self.rollups.start()

    async def stop(self) -> None:
        """Stop the rollup refresh (after its pass in progress) and the agents; Faust commits
        the offsets of acknowledged records on the way out."""
        await self.rollups.stop()
        await self.app.stop()


def build_worker(settings: Settings, bootstrap: str, warehouse: Warehouse, *, app_id: str = "ollystack",
                 registry: CollectorRegistry | None = None) -> Worker:
    """A Worker for ``settings``; every stage config is built and checked here, before any
    record flows. Raises ConfigError naming the setting that cannot work."""
    ingest_config = IngestConfig.from_settings(settings)
    score_config = ScoreConfig.from_settings(settings) if settings.score.enabled else None
    app = create_app(settings, bootstrap, app_id)
    metrics = WorkerMetrics(registry)
    metrics.registry.register(ConsumerLagCollector(app))
    deps = StageDeps(app, settings.topics, warehouse, metrics,
                     faust_dead_letters(app, settings.topics.deadletter, metrics))
    engine = open_engine(warehouse, settings.data_dir)
    stages: list[Stage] = [ingest.build(ingest_config, deps, engine)]
    if score_config is not None:
        stages.append(score.build(score_config, deps))
    return Worker(settings, app, stages, metrics, app_id, RollupRefresher(warehouse, settings.rollups, metrics))
