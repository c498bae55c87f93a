"""ClickHouse type strings map to the Arrow types chDB reads."""
from __future__ import annotations

import pyarrow as pa
import pytest

from core.errors import WarehouseError
from sinks.arrow_types import arrow_type, split_args, to_arrow_array


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


@pytest.mark.parametrize(
    ("ch_type", "values", "expected"),
    [
        ("Map(LowCardinality(String), String)", [{"a": "b", "c": "d"}, {}, {"e": "f"}],
         [[("a", "b"), ("c", "d")], [], [("e", "f")]]),
        ("Array(Map(LowCardinality(String), String))", [[{"a": "b"}], [], [{}, {"c": "d"}]],
         [[[("a", "b")]], [], [[], [("c", "d")]]]),
        ("Array(UInt64)", [[1, 2], [], [3]], [[1, 2], [], [3]]),
        ("String", ["x", ""], ["x", ""]),
    ],
    ids=["map", "array-of-maps", "array", "scalar"],
)
def test_arrays_are_built_with_the_declared_type(ch_type: str, values: list, expected: list) -> None:
    array = to_arrow_array(ch_type, values)
    assert array.type == arrow_type(ch_type)
    assert array.to_pylist() == expected
