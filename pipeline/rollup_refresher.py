"""The worker's periodic rollup refresh: sinks/rollups.py every few seconds, off the event loop."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from agents.metrics import WorkerMetrics
from core.errors import WarehouseError
from core.settings import RollupSettings
from sinks.rollups import RefreshReport, refresh_rollups
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


class RollupRefresher:
    """Runs one bounded refresh pass every ``settings.interval_s`` while started.

    A pass runs in a thread (chDB and the server driver block). A failed pass is logged and
    counted and the next one runs on time: what it left undone stays pending in the tables,
    so an outage of the warehouse delays the rollups but never stops the worker."""

    def __init__(self, warehouse: Warehouse, settings: RollupSettings, metrics: WorkerMetrics) -> None:
        self.warehouse, self.settings, self.metrics = warehouse, settings, metrics
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def refresh_once(self) -> RefreshReport | None:
        """One pass; its report, or None when it failed (logged and counted)."""
        try:
            report = await asyncio.to_thread(refresh_rollups, self.warehouse, margin_s=self.settings.margin_s,
                                             max_minutes=self.settings.max_minutes,
                                             minute_interval_s=self.settings.minute_interval_s,
                                             spill_bytes=self.settings.spill_mb * 1_000_000)
        except WarehouseError as exc:
            self.metrics.rollup_errors.labels(str(exc.retriable).lower()).inc()
            log.warning("rollup refresh failed; retrying next interval",
                        extra={"error": str(exc)[:500], "retriable": exc.retriable})
            return None
        except Exception:  # noqa: BLE001 - the worker's ingest must outlive a bug in the refresh
            self.metrics.rollup_errors.labels("false").inc()
            log.exception("rollup refresh failed; retrying next interval")
            return None
        self.metrics.rollup_minutes.inc(report.minutes)
        self.metrics.rollup_pending.set(report.pending)
        self.metrics.rollup_lag.set(report.lag_s)
        self.metrics.rollup_seconds.observe(report.seconds)
        if report.minutes:
            log.info("rollups refreshed", extra={"minutes": report.minutes, "pending": report.pending,
                                                 "lag_s": round(report.lag_s, 3),
                                                 "seconds": round(report.seconds, 3)})
        return report

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self.refresh_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.interval_s)

    def start(self) -> None:
        """Start refreshing (the first pass at once) in a task of the running loop."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="rollup-refresh")

    async def stop(self) -> None:
        """Stop after the pass in progress, if any, has finished."""
        if self._task is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        await task
