"""Batches: the rows Python builds (trace links, anomalies) as the columns an insert takes, the
order a batch's tables are stored in, and the token each insert carries."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from core.errors import RowsRefusedError
from schemas.tables import TRACE_LINKS_TABLE
from sinks.batches import BatchId, insert_tables, rows_to_columns


def test_rows_to_columns_is_column_major_in_first_row_key_order() -> None:
    shared = {"k": "v"}
    rows = [{"b": 1, "a": shared, "c": [1]}, {"a": {}, "c": [], "b": 2}]
    columns = rows_to_columns(rows)
    assert columns == {"b": [1, 2], "a": [shared, {}], "c": [[1], []]}
    assert list(columns) == ["b", "a", "c"]
    assert columns["a"][0] is shared  # values are not copied


def test_rows_to_columns_of_no_rows_is_empty() -> None:
    assert rows_to_columns([]) == {}


MISMATCHED = [
    pytest.param([{"a": 1, "b": 2}, {"a": 1}], "lacks column 'b'", id="missing-column"),
    pytest.param([{"a": 1}, {"a": 1, "z": 2}], r"row 1 has columns the first row lacks: \['z'\]", id="extra-column"),
    pytest.param([{"a": 1, "b": 2}, {"a": 1, "c": 2}], "lacks column 'b'", id="different-column"),
]


@pytest.mark.parametrize(("rows", "message"), MISMATCHED)
def test_rows_to_columns_rejects_rows_with_other_keys(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RowsRefusedError, match=message):
        rows_to_columns(rows)


class RecordingWarehouse:
    """Records the inserts it is given, in order (only what insert_tables calls)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, str | None]] = []

    def insert(self, table: str, columns: dict[str, list[Any]], *, dedup_token: str | None = None) -> int:
        rows = len(next(iter(columns.values())))
        self.calls.append(("rows", table, rows, dedup_token))
        return rows

    def insert_arrow(self, table: str, rows: pa.Table, *, dedup_token: str | None = None) -> int:
        self.calls.append(("arrow", table, rows.num_rows, dedup_token))
        return int(rows.num_rows)


def test_a_batch_stores_its_trace_links_first_then_each_table_once_under_its_token() -> None:
    warehouse = RecordingWarehouse()
    batch = BatchId.of("otlp_spans", 2, 10, 12)
    spans = pa.table({"SpanId": ["a", "b"]})
    link = {"Tenant": "", "TraceId": "t", "CorrelationId": "c"}
    total = insert_tables(warehouse, {"otel_traces": spans, "otel_logs": spans.slice(0, 0),
                                      TRACE_LINKS_TABLE: [link]}, batch)
    assert total == 3
    assert warehouse.calls == [("rows", TRACE_LINKS_TABLE, 1, f"otlp_spans:2:10-12:{TRACE_LINKS_TABLE}"),
                               ("arrow", "otel_traces", 2, "otlp_spans:2:10-12:otel_traces")]


def test_a_batch_of_several_partitions_has_one_token_per_table_whatever_their_order() -> None:
    one = BatchId((("otlp_spans", 0, 5, 9), ("otlp_spans", 1, 3, 4)))
    other = BatchId((("otlp_spans", 1, 3, 4), ("otlp_spans", 0, 5, 9)))
    assert one.token("otel_traces") == other.token("otel_traces") != one.token("otel_logs")
    assert one.token("otel_traces") != BatchId((("otlp_spans", 0, 5, 9), ("otlp_spans", 1, 3, 5))).token("otel_traces")
