"""ClickHouse column types as Arrow types, for handing column blocks to chDB."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa

from core.errors import WarehouseError

_SCALARS: dict[str, pa.DataType] = {
    "String": pa.string(),
    "UUID": pa.string(),
    "Bool": pa.bool_(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Date": pa.date32(),
    "DateTime": pa.timestamp("s"),
}
_DT64_UNITS = {"0": "s", "3": "ms", "6": "us", "9": "ns"}


def split_args(inner: str) -> list[str]:
    """Split 'A, B(C, D), E' at top-level commas."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


def _unwrap(ch_type: str) -> tuple[str, list[str]]:
    ch_type = ch_type.strip()
    if "(" not in ch_type:
        return ch_type, []
    name, _, rest = ch_type.partition("(")
    return name, split_args(rest[:-1])


@lru_cache(maxsize=512)
def arrow_type(ch_type: str) -> pa.DataType:
    """The Arrow type chDB reads into ``ch_type``; WarehouseError for types we never insert."""
    name, args = _unwrap(ch_type)
    if not args and name in _SCALARS:
        return _SCALARS[name]
    if name in ("LowCardinality", "Nullable"):
        return arrow_type(args[0])
    if name == "DateTime64":
        unit = _DT64_UNITS.get(args[0])
        if unit is None:
            raise WarehouseError(f"DateTime64 precision {args[0]} is not supported for inserts")
        return pa.timestamp(unit)
    if name == "DateTime":
        return pa.timestamp("s")
    if name == "Array":
        return pa.list_(arrow_type(args[0]))
    if name == "Map":
        return pa.map_(arrow_type(args[0]), arrow_type(args[1]))
    if name in ("SimpleAggregateFunction",):
        return arrow_type(args[1])
    raise WarehouseError(f"ClickHouse type {ch_type} cannot be inserted through this warehouse")


def to_arrow_array(ch_type: str, values: Sequence[Any]) -> pa.Array:
    """The Arrow array chDB reads into a column of ``ch_type``.

    Maps (dicts) and arrays are built from flat children and offsets, which is several
    times faster than letting Arrow convert a list of dicts row by row."""
    name, args = _unwrap(ch_type)
    if name in ("LowCardinality", "Nullable", "SimpleAggregateFunction"):
        return to_arrow_array(args[-1], values)
    if name == "Map":
        offsets, keys, items = [0], [], []
        for mapping in values:
            if mapping:
                keys.extend(mapping)
                items.extend(mapping.values())
            offsets.append(len(keys))
        return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), to_arrow_array(args[0], keys),
                                       to_arrow_array(args[1], items))
    if name == "Array":
        offsets, flat = [0], []
        for items in values:
            if items:
                flat.extend(items)
            offsets.append(len(flat))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), to_arrow_array(args[0], flat))
    return pa.array(values, type=arrow_type(ch_type))


def _plain_type(t: pa.DataType) -> pa.DataType:
    """``t`` with timestamps as int64 (their count of units) all the way down."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_list(t):
        return pa.list_(_plain_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(_plain_type(t.key_type), _plain_type(t.item_type))
    if pa.types.is_dictionary(t):
        return _plain_type(t.value_type)
    return t


def _plain_value(value: Any, t: pa.DataType) -> Any:
    if pa.types.is_map(t):
        return {k: _plain_value(v, t.item_type) for k, v in value}
    if pa.types.is_list(t) and (pa.types.is_map(t.value_type) or pa.types.is_list(t.value_type)):
        return [_plain_value(item, t.value_type) for item in value]
    return value


def arrow_to_columns(rows: pa.Table) -> dict[str, list[Any]]:
    """An Arrow table as the plain columns ``Warehouse.insert`` takes: DateTime64 as integer
    units, Maps as dicts, Arrays as lists. For the server backend, whose driver packs
    Python values: one object per value, which is why chDB takes Arrow itself."""
    out: dict[str, list[Any]] = {}
    for name, column in zip(rows.column_names, rows.columns, strict=True):
        plain = _plain_type(column.type)
        values = (column.cast(plain) if plain != column.type else column).to_pylist()
        if pa.types.is_map(plain) or pa.types.is_list(plain):
            values = [_plain_value(v, plain) for v in values]
        out[name] = values
    return out
