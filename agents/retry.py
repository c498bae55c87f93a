"""Warehouse reads a stream agent cannot go on without, retried while ClickHouse is unreachable."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, TypeVar

from core.errors import WarehouseError

log = logging.getLogger(__name__)
T = TypeVar("T")


async def read_with_retry(read: Callable[[], Awaitable[T]], what: str, initial_s: float, max_s: float,
                          should_stop: Callable[[], bool]) -> T:
    """``await read()``, again after capped exponential backoff while it raises a retriable
    WarehouseError. A permanent error, or any error once ``should_stop()``, is raised: the
    caller's records stay unacknowledged and are read again after a restart."""
    delay = initial_s
    while True:
        try:
            return await read()
        except WarehouseError as exc:
            if not exc.retriable or should_stop():
                raise
            log.warning(f"{what} not readable; retrying", extra={"error": str(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_s)
