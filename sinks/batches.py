"""Writing a batch of rows: every table of it, in a safe order, idempotent, retried until it lands.

The ingest stage, the score stage and `ollystack replay` write through here, so a batch
means the same thing everywhere: rows per table, and where they came from. Rows arrive
as Arrow tables (ingest) or as dicts (the few rows Python builds: links, anomalies)."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import pyarrow as pa

from core.errors import RowsRefusedError, WarehouseError
from core.types import Row
from schemas.tables import TRACE_LINKS_TABLE
from sinks.retry import Backoff, retry_warehouse
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)
# Rows of each table: an Arrow table (the ingest stage's), or dicts (the few rows Python
# builds: trace links, anomalies, alerts).
Tables = Mapping[str, Sequence[Row] | pa.Table]
# Links first: once a span row is visible, the link that names its trace's ID is too.
_FIRST = {TRACE_LINKS_TABLE: 0}


OffsetRange = tuple[str, int, int, int]  # topic, partition, first offset, last offset


@dataclass(frozen=True)
class BatchId:
    """Where a batch came from: a contiguous range of offsets in each of its partitions."""

    ranges: tuple[OffsetRange, ...]

    @classmethod
    def of(cls, topic: str, partition: int, first_offset: int, last_offset: int) -> BatchId:
        """A batch of one partition."""
        return cls(((topic, partition, first_offset, last_offset),))

    def token(self, table: str) -> str:
        # The same records retried give the same token, so ClickHouse drops the repeat.
        if len(self.ranges) == 1:
            topic, partition, first, last = self.ranges[0]
            return f"{topic}:{partition}:{first}-{last}:{table}"
        digest = hashlib.sha256(repr(sorted(self.ranges)).encode()).hexdigest()[:32]
        return f"{self.ranges[0][0]}:{len(self.ranges)}p:{digest}:{table}"


def rows_to_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows (dicts) as columns: {column: [value of row 0, value of row 1, ...]}.

    Columns come in the key order of the first row; ``{}`` for no rows. Raises
    RowsRefusedError when a row has a different set of keys from the first, so a
    malformed batch fails here and not half-way through an insert."""
    if not rows:
        return {}
    names = list(rows[0])
    width = len(names)
    try:
        columns = {name: list(map(itemgetter(name), rows)) for name in names}
    except KeyError as missing:
        raise RowsRefusedError(f"row lacks column {missing.args[0]!r} that the first row has") from None
    # Same count plus every first-row key present means the same key set.
    for index, row in enumerate(rows):
        if len(row) != width:
            extra = sorted(set(row) - set(names))
            raise RowsRefusedError(f"row {index} has columns the first row lacks: {extra}")
    return columns


def insert_tables(warehouse: Warehouse, tables: Tables, batch: BatchId | None) -> int:
    """Insert every table's rows; return the row count. Blocking: call it off the loop.

    Raises WarehouseError (retriable or not; RowsRefusedError for a value that does not
    fit) from the first table that fails; tables inserted before it are dropped as
    repeats by their token when the batch is retried."""
    total = 0
    for table in sorted(tables, key=lambda t: (_FIRST.get(t, 1), t)):
        rows = tables[table]
        token = batch.token(table) if batch is not None else None
        if isinstance(rows, pa.Table):
            total += warehouse.insert_arrow(table, rows, dedup_token=token) if rows.num_rows else 0
        elif rows:
            total += warehouse.insert(table, rows_to_columns(rows), dedup_token=token)
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
