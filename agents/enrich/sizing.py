"""Enriched records within the topic's message limit (pure).

A raw record under kafka.max_message_bytes can grow past it as JSON: a 4 MiB attribute of
'"' doubles, one of control bytes grows six times. What enrich emits is cut to fit: the
rows of one raw record are spread over several enriched records (trace links first, so a
span is never visible before the link that names its trace's ID), and a row too large on
its own has its longest text values shortened, with the attribute
``ollystack.truncated`` saying how many bytes were dropped."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from core.types import Row, Signal
from schemas.enriched import encode_enriched
from schemas.tables import TRACE_LINKS_TABLE

TRUNCATED_ATTRIBUTE = "ollystack.truncated"
# Where each table keeps the attributes a truncation note goes into.
_NOTE_COLUMNS = ("SpanAttributes", "LogAttributes", "Attributes", "FilteredAttributes")
_ENVELOPE_BYTES = 256  # {"v":2,"signal":...,"tables":{"name":[...]}} around the rows
_MIN_TEXT_CHARS = 64


@dataclass(frozen=True)
class Fitted:
    """The enriched records of one raw record, and how many rows were shortened to fit."""

    values: list[bytes]
    truncated_rows: int


def fit(signal: Signal, tables: Mapping[str, Sequence[Row]], max_bytes: int) -> Fitted:
    """``tables`` as enriched records of at most ``max_bytes`` each, in order (links first).

    Raises ValueError when a row cannot be made to fit even with every text value cut to
    _MIN_TEXT_CHARS (the caller dead-letters the raw record)."""
    whole = encode_enriched(signal, tables)
    if len(whole) <= max_bytes:
        return Fitted([whole], 0)
    budget = max_bytes - _ENVELOPE_BYTES
    ordered = sorted(tables.items(), key=lambda item: item[0] != TRACE_LINKS_TABLE)
    values: list[bytes] = []
    current: dict[str, list[Row]] = {}
    size = 0
    truncated = 0
    for table, rows in ordered:
        for row in rows:
            encoded = len(orjson.dumps(row)) + 1
            if encoded > budget:
                row = _shorten(row, budget)
                encoded = len(orjson.dumps(row)) + 1
                truncated += 1
            if current and size + encoded + len(table) > budget:
                values.append(encode_enriched(signal, current))
                current, size = {}, 0
            current.setdefault(table, []).append(row)
            size += encoded + len(table)
    if current:
        values.append(encode_enriched(signal, current))
    return Fitted(values, truncated)


def _shorten(row: Row, budget: int) -> Row:
    """A copy of ``row`` whose longest text values are cut until it encodes within ``budget``."""
    original = len(orjson.dumps(row))
    cap = max(_MIN_TEXT_CHARS, budget // 4)
    while True:
        short = {name: _cut(value, cap) for name, value in row.items()}
        dropped = original - len(orjson.dumps(short))
        _note(short, dropped)
        if len(orjson.dumps(short)) + 1 <= budget:
            return short
        if cap == _MIN_TEXT_CHARS:
            raise ValueError(f"a row of {original} bytes does not fit in {budget} bytes even with its text cut")
        cap = max(_MIN_TEXT_CHARS, cap // 4)


def _cut(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap] + "…"
    if isinstance(value, dict):
        return {_cut(key, cap): _cut(item, cap) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut(item, cap) for item in value]
    return value


def _note(row: Row, dropped_bytes: int) -> None:
    for column in _NOTE_COLUMNS:
        if isinstance(row.get(column), dict):
            row[column][TRUNCATED_ATTRIBUTE] = f"{max(dropped_bytes, 0)} bytes of text dropped to fit a Kafka record"
            return
