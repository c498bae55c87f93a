"""Writing one batch to the warehouse: idempotent per table, retried until it lands."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from agents.sink.config import SinkConfig
from core.errors import OllyStackError, WarehouseError
from schemas.enriched import LINKS_TABLE
from schemas.rows import to_columns
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)
# Links first: once a span row is visible, the link that names its trace's ID is too.
_ORDER = {LINKS_TABLE: 0}


@dataclass(frozen=True)
class BatchId:
    """Where a batch came from: one partition, a contiguous range of offsets."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int

    def token(self, table: str) -> str:
        # The same records retried give the same token, so ClickHouse drops the repeat.
        return f"{self.topic}:{self.partition}:{self.first_offset}-{self.last_offset}:{table}"


def insert_tables(warehouse: Warehouse, tables: Mapping[str, list[dict[str, Any]]], batch: BatchId | None) -> int:
    """Insert every table's rows; return the row count. Blocking: call it off the loop.

    Raises WarehouseError (retriable or not) from the first table that fails; tables
    inserted before it are de-duplicated by their token when the batch is retried."""
    total = 0
    for table in sorted(tables, key=lambda t: (_ORDER.get(t, 1), t)):
        rows = tables[table]
        if not rows:
            continue
        token = batch.token(table) if batch is not None else None
        total += warehouse.insert(table, to_columns(rows), dedup_token=token)
    return total


async def insert_with_retry(
    warehouse: Warehouse,
    tables: Mapping[str, list[dict[str, Any]]],
    batch: BatchId | None,
    config: SinkConfig,
    should_stop: Callable[[], bool] = lambda: False,
    on_retry: Callable[[Exception], Awaitable[None] | None] | None = None,
) -> int:
    """Insert off the event loop, retrying retriable failures with capped exponential backoff.

    Returns once ClickHouse holds the rows. Raises the permanent WarehouseError (bad data)
    at once, and OllyStackError when told to stop while still retrying: the caller then
    acknowledges nothing and the records are read again after a restart."""
    delay = config.retry_initial_s
    while True:
        try:
            started = time.perf_counter()
            rows = await asyncio.to_thread(insert_tables, warehouse, tables, batch)
            log.debug("batch inserted", extra={"rows": rows, "ms": round((time.perf_counter() - started) * 1000, 1)})
            return rows
        except WarehouseError as exc:
            if not _retriable(exc):
                raise
            log.warning("insert failed; retrying", extra={"error": str(exc), "retry_in_s": delay,
                                                           "batch": batch.token("*") if batch else None})
            if on_retry is not None:
                maybe = on_retry(exc)
                if maybe is not None:
                    await maybe
        if should_stop():
            raise OllyStackError("sink stopping with a batch not inserted; its offsets stay uncommitted")
        await asyncio.sleep(delay)
        delay = min(delay * 2, config.retry_max_s)


def _retriable(exc: WarehouseError) -> bool:
    if exc.retriable:
        return True
    # chDB reports resource trouble (memory, too many parts, a busy table) as plain
    # errors; those pass with time, unlike type or syntax errors in the data.
    text = str(exc)
    return any(code in text for code in ("TOO_MANY_PARTS", "MEMORY_LIMIT_EXCEEDED", "TIMEOUT_EXCEEDED",
                                          "TABLE_IS_READ_ONLY", "ABORTED", "CANNOT_ALLOCATE_MEMORY"))
