"""One batch of raw records inside the engine: parsed, flattened, and the Join tables its
decisions are applied through; everything dropped when the batch is done."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from google.protobuf.message import DecodeError as ProtobufDecodeError

from core.errors import WarehouseError
from core.types import Signal
from schemas.otlp_wire import REQUESTS, ROOT_MESSAGES, ROOTS, STRUCTURES, frame, proto_schema
from sinks.engine import Engine, staging_name

log = logging.getLogger(__name__)


def write_schemas(engine: Engine) -> dict[Signal, str]:
    """The engine's ``format_schema`` value per signal; the .proto files are (re)written
    next to the engine's data, from the OTLP descriptors installed now."""
    folder = engine.path / "format_schemas"
    folder.mkdir(parents=True, exist_ok=True)
    schemas: dict[Signal, str] = {}
    for signal in ROOTS:
        path = Path(folder) / f"ollystack_otlp_{signal}.proto"
        text = proto_schema(signal)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        schemas[signal] = f"{path}:{ROOT_MESSAGES[signal]}"
    return schemas


@dataclass
class Unreadable:
    """Records of a batch the engine could not parse, by index, with the reason."""

    reasons: dict[int, str] = field(default_factory=dict)


class StagedBatch:
    """Raw records of one signal parsed into a nested table of the staging database.

    Use as a context manager: every table the batch created is dropped on the way out."""

    def __init__(self, engine: Engine, signal: Signal, schema: str) -> None:
        self.engine, self.signal, self.schema = engine, signal, schema
        self.nested = staging_name("nested")
        self.tables: list[str] = []

    def __enter__(self) -> StagedBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        for table in reversed(self.tables):
            try:
                self.engine.run(f"DROP TABLE IF EXISTS {table}")
            except WarehouseError:
                log.warning("staging table not dropped", extra={"table": table})

    def create(self, kind: str, columns: str, engine: str = "Memory") -> str:
        """A new table of this batch; dropped with it."""
        name = staging_name(kind)
        self.engine.run(f"CREATE TABLE {name} ({columns}) ENGINE = {engine}")
        self.tables.append(name)
        return name

    def parse(self, records: Sequence[tuple[int, bytes]]) -> Unreadable:
        """Parse ``records`` ((index in the batch, value) pairs) into the nested table.

        A record the engine cannot parse fails the whole stream; then the records
        protobuf's own parser accepts are given to the engine together, and every other
        record alone: the engine keeps what it can read (protobuf is stricter about text,
        which the engine's checks refuse later with a clearer reason), and a record
        neither can read is left out with protobuf's or the engine's complaint.
        Returns the records left out and why; raises WarehouseError only for a failure
        that is not about the bytes (the engine itself is unwell)."""
        self.tables.append(self.nested)
        self.engine.run(f"CREATE TABLE {self.nested} ({STRUCTURES[self.signal]}) ENGINE = Memory")
        unreadable = Unreadable()
        try:
            self._load(frame(records))
        except WarehouseError as exc:
            log.info("a batch holds records the engine cannot parse; finding them", extra={"error": _first_line(exc)})
        else:
            return unreadable
        self.engine.run(f"TRUNCATE TABLE {self.nested}")
        message = REQUESTS[self.signal]
        suspects: dict[int, str] = {}
        for index, value in records:
            try:
                message.FromString(value)
            except (ProtobufDecodeError, ValueError, RecursionError) as exc:
                suspects[index] = f"not an OTLP {message.__name__}: {exc}"
        together = [(i, v) for i, v in records if i not in suspects]
        try:
            self._load(frame(together))
            alone = [(i, v) for i, v in records if i in suspects]
        except WarehouseError:
            self.engine.run(f"TRUNCATE TABLE {self.nested}")
            alone = list(records)
        for index, value in alone:
            try:
                self._load(frame([(index, value)]))
            except WarehouseError as exc:
                reason = suspects.get(index) or f"the engine cannot read this {message.__name__}: {_first_line(exc)}"
                unreadable.reasons[index] = reason
        return unreadable

    def _load(self, data: bytes) -> None:
        self.engine.load(self.nested, "Protobuf", data,
                         {"format_schema": self.schema, "input_format_protobuf_oneof_presence": 1})

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        return self.engine.arrow(sql, params)

    def lookup(self, kind: str, columns: str, keys: str, data: pa.Table) -> str:
        """A Join table of this batch (``joinGet`` reads it by ``keys``) holding ``data``."""
        name = self.create(kind, columns, f"Join(ANY, LEFT, {keys})")
        if data.num_rows:
            self.engine.load_arrow(name, data)
        return name


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:500] if str(exc).strip() else repr(exc)
