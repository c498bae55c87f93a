"""The enriched-topic record: the rows of one raw record, per ClickHouse table, as orjson.

``{"v": 2, "signal": "traces", "tables": {"otel_traces": [row, ...], "ollystack_trace_links": [...]}}``
Version 1 (rows carrying a private ``_table`` key, signal "spans") is not read: such a
record is dead-lettered with that reason, and the raw topic can be replayed."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from core.errors import DecodeError
from core.types import SIGNALS, Row, Signal
from schemas.tables import (
    EXEMPLARS_TABLE,
    LOGS_TABLE,
    METRIC_TABLES,
    TRACE_LINKS_TABLE,
    TRACES_TABLE,
)

VERSION = 2
# The tables an enriched record of each signal may carry rows for.
SIGNAL_TABLES: Mapping[Signal, frozenset[str]] = {
    "traces": frozenset({TRACES_TABLE, TRACE_LINKS_TABLE}),
    "logs": frozenset({LOGS_TABLE, TRACE_LINKS_TABLE}),
    "metrics": frozenset({*METRIC_TABLES, EXEMPLARS_TABLE}),
}
Tables = dict[str, list[Row]]


@dataclass(frozen=True)
class EnrichedRecord:
    signal: Signal
    tables: Tables

    @property
    def rows(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def encode_enriched(signal: Signal, tables: Mapping[str, Sequence[Row]]) -> bytes:
    """One enriched record; tables without rows are left out."""
    return orjson.dumps({"v": VERSION, "signal": signal,
                         "tables": {name: rows for name, rows in tables.items() if rows}})


def decode_enriched(value: bytes | None) -> EnrichedRecord:
    """The record in ``value``. Raises DecodeError naming what is wrong for anything that is
    not a version-2 record of a known signal whose tables are lists of objects."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not an enriched record: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DecodeError("not an enriched record: not a JSON object")
    if data.get("v") != VERSION:
        raise DecodeError(f"enriched record version {data.get('v')!r} is not {VERSION}: replay its raw record")
    signal, tables = data.get("signal"), data.get("tables")
    if signal not in SIGNALS:
        raise DecodeError(f"enriched record of unknown signal {str(signal)[:40]!r}")
    if not isinstance(tables, dict):
        raise DecodeError("enriched record without a tables object")
    allowed = SIGNAL_TABLES[signal]
    for name, rows in tables.items():
        if name not in allowed:
            raise DecodeError(f"enriched {signal} record has rows for table {name[:80]!r}")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DecodeError(f"enriched record: the rows of {name} are not a list of objects")
    return EnrichedRecord(signal, tables)


def merge_tables(parts: Sequence[Mapping[str, Sequence[Row]]]) -> Tables:
    """Rows of several records, per table, in record order."""
    merged: Tables = {}
    for part in parts:
        for table, rows in part.items():
            merged.setdefault(table, []).extend(rows)
    return merged
