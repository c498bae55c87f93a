"""One retried warehouse call: capped exponential backoff while ClickHouse is unavailable."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from core.errors import ConfigError, WarehouseError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts: ``initial_s``, doubling up to ``max_s``."""

    initial_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ConfigError(f"retry_initial_s: must be > 0 and <= retry_max_s ({self.initial_s} > {self.max_s})")

    def after(self, delay_s: float) -> float:
        return min(delay_s * 2, self.max_s)


async def retry_warehouse(call: Callable[[], Awaitable[T]], what: str, backoff: Backoff,
                          should_stop: Callable[[], bool] = lambda: False,
                          on_retry: Callable[[WarehouseError], None] | None = None) -> T:
    """``await call()``, again after each backoff while it raises a retriable WarehouseError.

    A permanent error is raised at once; a retriable one is raised once ``should_stop()``
    is true. Either way the caller's records stay unacknowledged and are read again
    after a restart."""
    delay_s = backoff.initial_s
    while True:
        try:
            return await call()
        except WarehouseError as exc:
            if not exc.retriable or should_stop():
                raise
            log.warning("%s failed; retrying", what, extra={"error": str(exc)[:500], "retry_in_s": delay_s})
            if on_retry is not None:
                on_retry(exc)
        await asyncio.sleep(delay_s)
        delay_s = backoff.after(delay_s)
