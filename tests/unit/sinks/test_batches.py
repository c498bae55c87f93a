"""rows_to_columns: the rows Python builds (trace links, anomalies) as the columns an insert takes."""
from __future__ import annotations

from typing import Any

import pytest

from core.errors import RowsRefusedError
from sinks.batches import rows_to_columns


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
