"""The worker role: the ingest stage on its raw-topic consumer groups, the Faust app with the
score stage (and the producer both publish with), and the rollup refresh, started inside the
running loop."""
from __future__ import annotations

import gc

import faust
from prometheus_client import CollectorRegistry

from agents.ingest import agent as ingest
from agents.ingest.config import IngestConfig
from agents.ingest.source import raw_sources
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
    """The ingest stage, a Faust app with (when score.enabled) the score stage on it, and the
    periodic refresh of the per-minute rollups the API reads."""

    def __init__(self, settings: Settings, app: faust.App, stages: list[Stage], metrics: WorkerMetrics,
                 app_id: str, rollups: RollupRefresher) -> None:
        self.settings, self.app, self.stages, self.metrics, self.app_id = settings, app, stages, metrics, app_id
        self.rollups = rollups
        # The Faust agents (the ingest stage reads through consumer groups of its own).
        self.agent_names = [name for stage in stages if isinstance(stage, score.ScoreStage)
                            for name in stage.agent_names]

    @property
    def score(self) -> score.ScoreStage | None:
        """The score stage, when this worker runs one."""
        return next((s for s in self.stages if isinstance(s, score.ScoreStage)), None)

    @property
    def ingest(self) -> ingest.IngestStage:
        return next(s for s in self.stages if isinstance(s, ingest.IngestStage))

    def healthy(self) -> bool:
        """The app runs and was not asked to stop (a crashed agent stops it), and no ingest
        loop ended."""
        return bool(self.app.started and not self.app.should_stop and self.ingest.crashed is None)

    async def start(self) -> None:
        """Start consuming; returns once the app and every ingest source have joined their
        consumer groups."""
        (self.settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
        await self.app.start()
        try:
            await self.ingest.start()
        except BaseException:
            await self.app.stop()
            raise
        # Everything allocated so far lives as long as the process: keep the cyclic
        # collector from walking it again on every pass (the hot path builds few objects
        # now, but Faust and aiokafka still make garbage per record).
        gc.freeze()
        self.rollups.start()

    async def stop(self) -> None:
        """Stop the rollup refresh (after its pass in progress), the ingest loops and the
        agents; the offsets of acknowledged records are committed on the way out."""
        await self.rollups.stop()
        await self.ingest.stop()
        await self.app.stop()


def build_worker(settings: Settings, bootstrap: str, warehouse: Warehouse, *, app_id: str = "ollystack",
                 registry: CollectorRegistry | None = None) -> Worker:
    """A Worker for ``settings``; every stage config is built and checked here, before any
    record flows. Raises ConfigError naming the setting that cannot work."""
    ingest_config = IngestConfig.from_settings(settings)
    score_config = ScoreConfig.from_settings(settings) if settings.score.enabled else None
    app = create_app(settings, bootstrap, app_id)
    metrics = WorkerMetrics(registry)
    sources = raw_sources(settings.topics, settings.kafka, bootstrap, app_id)
    metrics.registry.register(ConsumerLagCollector(app, list(sources.values())))
    deps = StageDeps(app, settings.topics, warehouse, metrics,
                     faust_dead_letters(app, settings.topics.deadletter, metrics))
    engine = open_engine(warehouse, settings.data_dir)
    stages: list[Stage] = [ingest.build(ingest_config, deps, engine, sources)]
    if score_config is not None:
        stages.append(score.build(score_config, deps))
    return Worker(settings, app, stages, metrics, app_id, RollupRefresher(warehouse, settings.rollups, metrics))
