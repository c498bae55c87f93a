"""How a take() of records is cut: per partition, by bytes, and into inserts by rows."""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pytest

from agents.ingest.batching import RECORD, by_partition, record_ranges, rows_of


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    value: bytes | None


def events(*sizes: int, partition: int = 0) -> list[Record]:
    return [Record("t", partition, b"x" * size) for size in sizes]


def test_events_are_grouped_per_partition_in_the_order_read() -> None:
    read = [*events(1, partition=1), *events(2), *events(3, partition=1)]
    groups = by_partition(read)
    assert [len(e.value or b"") for e in groups[("t", 1)]] == [1, 3] and list(groups) == [("t", 1), ("t", 0)]


def table(records: list[int]) -> pa.Table:
    return pa.table({RECORD: pa.array(records, pa.uint64()), "x": list(range(len(records)))})


@pytest.mark.parametrize(("rows", "records", "limit", "ranges"), [
    pytest.param([0, 0, 1, 2, 2, 2], 3, 3, [(0, 1), (2, 2)], id="runs-of-at-most-three-rows"),
    pytest.param([0, 0, 0, 0, 1], 2, 3, [(0, 0), (1, 1)], id="a-record-over-the-limit-alone"),
    pytest.param([1], 3, 10, [(0, 2)], id="records-without-rows-ride-along"),
    pytest.param([], 0, 10, [], id="nothing"),
])
def test_insert_ranges_count_the_rows_of_every_table(rows: list[int], records: int, limit: int,
                                                      ranges: list[tuple[int, int]]) -> None:
    assert record_ranges({"a": table(rows)}, records, limit) == ranges


def test_two_tables_share_one_budget() -> None:
    assert record_ranges({"a": table([0, 1]), "b": table([0, 1])}, 2, 2) == [(0, 0), (1, 1)]


def test_rows_of_a_range_drop_the_record_column() -> None:
    rows = rows_of(table([0, 0, 1, 3, 3]), 1, 3)
    assert rows.column_names == ["x"] and rows.column("x").to_pylist() == [2, 3, 4]
