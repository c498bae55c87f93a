"""Forwarding alerts to an Alertmanager: POST /api/v2/alerts, retried with backoff.

Forwarding is best effort by design: the alerts topic is the durable output and is
written before anything is acknowledged; an Alertmanager that stays down must not stall
scoring. A batch still refused after every retry is logged and counted
(ollystack_alertmanager_failures), and the next window re-sends every open alert anyway
(Alertmanager expects firing alerts to be re-sent, and dedups them by labels)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp

from schemas.alerts import Alert
from sinks.retry import Backoff

log = logging.getLogger(__name__)
QUEUE_BATCHES = 100


class AlertmanagerForwarder:
    """A background task that posts queued alert batches in order."""

    def __init__(self, url: str, retries: int, timeout_s: float, backoff: Backoff,
                 on_failure: Callable[[], None] = lambda: None) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.retries, self.timeout_s, self.backoff = retries, timeout_s, backoff
        self.on_failure = on_failure
        self._queue: asyncio.Queue[list[Alert]] = asyncio.Queue(QUEUE_BATCHES)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def submit(self, alerts: list[Alert]) -> None:
        """Queue a batch; when the queue is full the batch is dropped and counted."""
        if not alerts:
            return
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        try:
            self._queue.put_nowait(alerts)
        except asyncio.QueueFull:
            log.warning("alertmanager queue full; batch dropped", extra={"alerts": len(alerts)})
            self.on_failure()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, alerts: list[Alert]) -> bool:
        """POST one batch; True once Alertmanager accepted it. Retries connection errors,
        timeouts, 429 and 5xx with capped exponential backoff; other answers are final."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        body = [a.to_alertmanager() for a in alerts]
        delay = self.backoff.initial_s
        for attempt in range(1, self.retries + 1):
            try:
                async with self._session.post(self.endpoint, json=body) as response:
                    if response.status < 300:
                        return True
                    text = (await response.text())[:200]
                    if response.status != 429 and response.status < 500:
                        log.error("alertmanager refused alerts", extra={"status": response.status, "body": text})
                        return False
                    log.warning("alertmanager busy; retrying", extra={"status": response.status, "attempt": attempt})
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("alertmanager unreachable; retrying", extra={"error": repr(exc), "attempt": attempt})
            if attempt < self.retries:
                await asyncio.sleep(delay)
                delay = self.backoff.after(delay)
        return False

    async def _run(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                if not await self.send(batch):
                    self.on_failure()
            except Exception:  # noqa: BLE001 - the forwarder must outlive one bad batch
                log.exception("alertmanager forwarding failed")
                self.on_failure()
