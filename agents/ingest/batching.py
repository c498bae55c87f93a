"""How the ingest stage orders a take and cuts it into inserts (pure): per partition, in
offset order; inserts of at most ``max_rows`` rows (a record with more rows than that is an
insert of its own)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

import numpy as np
import pyarrow as pa

RECORD = "_record"  # the column of an ingested table naming each row's record in its batch


class _Record(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


R = TypeVar("R", bound=_Record)


def by_partition(records: Iterable[R]) -> dict[tuple[str, int], list[R]]:
    """Records (a Kafka consumer record, or anything with ``.topic``, ``.partition`` and
    ``.value``) per (topic, partition), each list in the order read."""
    groups: dict[tuple[str, int], list[R]] = {}
    for record in records:
        groups.setdefault((record.topic, record.partition), []).append(record)
    return groups


def record_ranges(tables: Mapping[str, pa.Table], records: int, max_rows: int) -> list[tuple[int, int]]:
    """[first, last] record ranges covering 0..records-1 whose rows, over every table,
    stay within ``max_rows`` (a record alone may exceed it)."""
    counts = np.zeros(records, dtype=np.int64)
    for table in tables.values():
        if table.num_rows:
            counts += np.bincount(table.column(RECORD).to_numpy(), minlength=records)[:records]
    ranges: list[tuple[int, int]] = []
    first, rows = 0, 0
    for index, count in enumerate(counts.tolist()):
        if index > first and rows + count > max_rows:
            ranges.append((first, index - 1))
            first, rows = index, 0
        rows += count
    if records:
        ranges.append((first, records - 1))
    return ranges


def rows_of(table: pa.Table, first: int, last: int) -> pa.Table:
    """The rows of records first..last of a table ordered by its record column, without it."""
    records = table.column(RECORD).to_numpy()
    start, end = np.searchsorted(records, [first, last + 1])
    return table.slice(int(start), int(end - start)).drop_columns([RECORD])
