"""Writing a batch of rows: every table of it, in a safe order, idempotent, retried until it lands.

The sink stage, the score stage and `ollystack replay` write through here, so a batch
means the same thing everywhere: rows per table, and where they came from."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from core.errors import WarehouseError
from core.types import Row
from schemas.rows import to_columns
from schemas.tables import TRACE_LINKS_TABLE
from sinks.retry import Backoff, retry_warehouse
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)
Tables = Mapping[str, Sequence[Row]]
# Links first: once a span row is visible, the link that names its trace's ID is too.
_FIRST = {TRACE_LINKS_TABLE: 0}


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


def insert_tables(warehouse: Warehouse, tables: Tables, batch: BatchId | None) -> int:
    """Insert every table's rows; return the row count. Blocking: call it off the loop.

    Raises WarehouseError (retriable or not; RowsRefusedError for a value that does not
    fit) from the first table that fails; tables inserted before it are dropped as
    repeats by their token when the batch is retried."""
    total = 0
    for table in sorted(tables, key=lambda t: (_FIRST.get(t, 1), t)):
        rows = tables[table]
        if rows:
            token = batch.token(table) if batch is not None else None
            total += warehouse.insert(table, to_columns(rows), dedup_token=token)
    return total


async def write_tables(warehouse: Warehouse, tables: Tables, batch: BatchId | None, backoff: Backoff,
                       should_stop: Callable[[], bool] = lambda: False,
                       on_retry: Callable[[WarehouseError], None] | None = None) -> int:
    """``insert_tables`` off the event loop, retried while ClickHouse is unavailable.

    Returns once ClickHouse holds the rows. Raises a permanent WarehouseError at once, and
    the retriable one when told to stop: the caller then acknowledges nothing."""
    started = time.perf_counter()
    rows = await retry_warehouse(lambda: asyncio.to_thread(insert_tables, warehouse, tables, batch),
                                 f"insert of {batch.token('*') if batch else 'a batch'}", backoff, should_stop,
                                 on_retry)
    log.debug("batch inserted", extra={"rows": rows, "ms": round((time.perf_counter() - started) * 1000, 1)})
    return rows
