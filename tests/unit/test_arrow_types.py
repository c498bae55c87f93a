"""ClickHouse type strings map to the Arrow types chDB reads."""
from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.errors import WarehouseError
from sinks.arrow_types import arrow_type, split_args, to_arrow_values


@pytest.mark.parametrize(
    ("ch_type", "expected"),
    [
        ("String", pa.string()),
        ("LowCardinality(String)", pa.string()),
        ("DateTime64(9)", pa.timestamp("ns")),
        ("UInt64", pa.uint64()),
        ("Map(LowCardinality(String), String)", pa.map_(pa.string(), pa.string())),
        ("Array(Map(LowCardinality(String), String))", pa.list_(pa.map_(pa.string(), pa.string()))),
        ("Array(DateTime64(9))", pa.list_(pa.timestamp("ns"))),
        ("Bool", pa.bool_()),
    ],
    ids=["string", "lowcard", "dt64", "u64", "map", "array-of-map", "array-of-dt64", "bool"],
)
def test_arrow_type(ch_type: str, expected: pa.DataType) -> None:
    assert arrow_type(ch_type) == expected


def test_unsupported_type_is_named() -> None:
    with pytest.raises(WarehouseError, match="Decimal"):
        arrow_type("Decimal(10, 2)")


def test_split_args_respects_parentheses() -> None:
    assert split_args("A, B(C, D), E") == ["A", "B(C, D)", "E"]


def test_maps_become_key_value_lists() -> None:
    assert to_arrow_values("Array(Map(String, String))", [[{"a": "b"}], []]) == [[[("a", "b")]], []]
    assert to_arrow_values("String", ["x"]) == ["x"]
