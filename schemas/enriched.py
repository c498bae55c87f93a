"""The enriched-topic record (version 3): rows of one ClickHouse table as an Arrow IPC stream.

Any Arrow library reads it (``pyarrow.ipc.open_stream``); the schema's metadata names the
format version, the signal and the table, and the columns are the table's insert columns
(``CorrelationId`` set, attributes normalised) with ClickHouse's types as Arrow types.
Buffers are not compressed by Arrow; the Kafka producer compresses its batches. Rows of one
batch are cut into records of at most the topic's message size; a row too large for a record alone has its longest text
values shortened, and ``ollystack.truncated`` in its attributes says how much was cut.

Versions 1 and 2 (rows as JSON) are not read: such a record is refused with that reason,
and the raw topic can be replayed."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from core.errors import DecodeError
from core.types import SIGNALS, Signal
from schemas.tables import EXEMPLARS_TABLE, LOGS_TABLE, METRIC_TABLES, TRACES_TABLE

VERSION = "3"
_VERSION_KEY, _SIGNAL_KEY, _TABLE_KEY = b"ollystack.version", b"ollystack.signal", b"ollystack.table"
# The tables an enriched record of each signal may carry rows for.
SIGNAL_TABLES: Mapping[Signal, frozenset[str]] = {
    "traces": frozenset({TRACES_TABLE}),
    "logs": frozenset({LOGS_TABLE}),
    "metrics": frozenset({*METRIC_TABLES, EXEMPLARS_TABLE}),
}
TRUNCATED_ATTRIBUTE = "ollystack.truncated"
_NOTE_COLUMNS = ("SpanAttributes", "LogAttributes", "Attributes", "FilteredAttributes")
# Uncompressed: the producer compresses whole Kafka batches (kafka.compression), and Arrow's
# per-buffer zstd added about 0.85 ms to decoding every record whatever its size.
_OPTIONS = pa.ipc.IpcWriteOptions(compression=None)
_ENVELOPE_BYTES = 64 * 1024  # schema, metadata and framing around the rows, generously
_MIN_TEXT_CHARS = 64


@dataclass(frozen=True)
class EnrichedRecord:
    signal: Signal
    table: str
    rows: pa.Table


@dataclass(frozen=True)
class Encoded:
    """The enriched records of one table of a batch, and how many rows were shortened."""

    values: list[bytes]
    truncated_rows: int


def _ipc(rows: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema, options=_OPTIONS) as writer:
        writer.write_table(rows)
    value: bytes = sink.getvalue().to_pybytes()
    return value


def encode_enriched(signal: Signal, table: str, rows: pa.Table, max_bytes: int) -> Encoded:
    """``rows`` of ``table`` as enriched records of at most ``max_bytes`` each, in row order.

    Raises ValueError when a single row cannot be made to fit even with every text value
    cut to 64 characters (the caller sets its record aside)."""
    metadata = {**(rows.schema.metadata or {}), _VERSION_KEY: VERSION.encode(), _SIGNAL_KEY: signal.encode(),
                _TABLE_KEY: table.encode()}
    rows = rows.replace_schema_metadata(metadata)
    values: list[bytes] = []
    truncated = 0
    # Cut by the uncompressed size first (it bounds the compressed one), so that a big
    # batch is serialized about once rather than halved and serialized again and again.
    per_row = max(1, rows.nbytes // max(1, rows.num_rows))
    step = max(1, (max_bytes - _ENVELOPE_BYTES) // per_row)
    pending = [rows.slice(start, step) for start in range(0, rows.num_rows, step)]
    while pending:
        part = pending.pop(0)
        if part.num_rows == 0:
            continue
        value = _ipc(part)
        if len(value) <= max_bytes:
            values.append(value)
        elif part.num_rows > 1:
            half = part.num_rows // 2
            pending[:0] = [part.slice(0, half), part.slice(half)]
        else:
            values.append(_ipc(_shorten(part, max_bytes - _ENVELOPE_BYTES)))
            truncated += 1
    return Encoded(values, truncated)


def decode_enriched(value: bytes | None) -> EnrichedRecord:
    """The record in ``value``. Raises DecodeError naming what is wrong for anything that is
    not a version-3 record of a known signal and one of its tables."""
    try:
        rows = pa.ipc.open_stream(value or b"").read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        head = (value or b"")[:1]
        hint = ": a JSON record of version 1 or 2, replay its raw record" if head == b"{" else ""
        raise DecodeError(f"not an enriched record (Arrow IPC stream){hint}: {exc}") from None
    metadata = rows.schema.metadata or {}
    version = metadata.get(_VERSION_KEY, b"").decode(errors="replace")
    if version != VERSION:
        raise DecodeError(f"enriched record version {version[:20]!r} is not {VERSION}: replay its raw record")
    signal = metadata.get(_SIGNAL_KEY, b"").decode(errors="replace")
    if signal not in SIGNALS:
        raise DecodeError(f"enriched record of unknown signal {signal[:40]!r}")
    table = metadata.get(_TABLE_KEY, b"").decode(errors="replace")
    if table not in SIGNAL_TABLES[signal]:
        raise DecodeError(f"enriched {signal} record has rows for table {table[:80]!r}")
    return EnrichedRecord(signal, table, rows)


def _shorten(row: pa.Table, budget: int) -> pa.Table:
    """A one-row table whose longest text values are cut until it encodes within ``budget``."""
    original = row.to_pylist()[0]
    cap = max(_MIN_TEXT_CHARS, budget // 4)
    size = len(_ipc(row))
    while True:
        short = {name: _cut(value, cap) for name, value in original.items()}
        cut = pa.Table.from_pylist([short], schema=row.schema)
        _note(short, size - len(_ipc(cut)))
        cut = pa.Table.from_pylist([short], schema=row.schema)
        if len(_ipc(cut)) <= budget:
            return cut
        if cap == _MIN_TEXT_CHARS:
            raise ValueError(f"a row of {size} bytes does not fit in {budget} bytes even with its text cut")
        cap = max(_MIN_TEXT_CHARS, cap // 4)


def _cut(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap] + "…"
    if isinstance(value, list):
        return [_cut(item, cap) for item in value]
    if isinstance(value, tuple):
        return tuple(_cut(item, cap) for item in value)
    if isinstance(value, dict):
        return {key: _cut(item, cap) for key, item in value.items()}
    return value


def _note(row: dict[str, Any], dropped_bytes: int) -> None:
    for column in _NOTE_COLUMNS:
        value = row.get(column)
        if isinstance(value, list):  # a map, as Arrow gives it: (key, value) pairs
            row[column] = [kv for kv in value if kv[0] != TRUNCATED_ATTRIBUTE] + [
                (TRUNCATED_ATTRIBUTE, f"{max(dropped_bytes, 0)} bytes of text dropped to fit a Kafka record")]
            return
