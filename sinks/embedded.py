"""The chDB backend: the ClickHouse engine embedded in this process, one data folder per process."""
from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from core.errors import RowsRefusedError, WarehouseError
from core.types import Columns, Row
from sinks.arrow_types import to_arrow_array
from sinks.warehouse import (
    CONVERSION_ERRORS,
    check_dedup_token,
    check_identifier,
    column_lengths,
    failure,
)

_SESSION_SETTINGS = (
    "SET output_format_json_quote_64bit_integers = 0",
    "SET session_timezone = 'UTC'",
)
_sessions: dict[Path, Any] = {}
_sessions_lock = threading.Lock()
# chDB's Python() table function reads the Arrow block under the GIL from inside the
# engine; two threads in chDB at once can deadlock (one holds the GIL waiting for the
# engine, the other holds the engine waiting for the GIL). One call at a time.
_calls_lock = threading.Lock()


def _session(path: Path) -> Any:
    # chDB runs one embedded server per process, bound to the first data folder it
    # opened: share one session per folder and let chDB refuse a second folder.
    from chdb import session as chdb_session

    path = path.resolve()
    with _sessions_lock:
        if path not in _sessions:
            path.mkdir(parents=True, exist_ok=True)
            try:
                sess = chdb_session.Session(str(path))
            except RuntimeError as exc:
                raise WarehouseError(f"chDB cannot open {path}: {exc}") from exc
            for statement in _SESSION_SETTINGS:
                sess.query(statement)
            _sessions[path] = sess
        return _sessions[path]


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0",
                              "\b": "\\b", "\f": "\\f"})
_QUOTED_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r",
                                 "\0": "\\0", "\b": "\\b", "\f": "\\f"})


def _literal(value: Any) -> str:
    """A value as ClickHouse reads it inside an Array or Map parameter (quoted format)."""
    if isinstance(value, str):
        return "'" + value.translate(_QUOTED_ESCAPES) + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_literal(k)}:{_literal(v)}" for k, v in value.items()) + "}"
    return _param_text(value)


def _param_text(value: Any) -> str:
    """A parameter value as text: chDB hands it to ClickHouse as-is, so strings get the
    escaped (TSV) form and arrays/maps the quoted form ClickHouse parses them with."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.translate(_TSV_ESCAPES)
    if isinstance(value, (list, tuple, dict)):
        return _literal(value)
    return str(value)


class EmbeddedWarehouse:
    """Warehouse on chDB. Thread-safe: calls from several threads run one at a time."""

    def __init__(self, path: Path, database: str = "default") -> None:
        self.path = Path(path)
        self.database = check_identifier(database, "database")
        self._session = _session(self.path)
        self._schemas: dict[str, dict[str, str]] = {}

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None, *, inserting: bool = False) -> Any:
        try:
            with _calls_lock:
                bound = {k: _param_text(v) for k, v in params.items()} if params else None
                return self._session.query(sql, fmt, params=bound)
        except RuntimeError as exc:  # chdb's ChdbError derives from RuntimeError
            raise failure(str(exc).strip(), inserting=inserting) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        result = self._run(sql, "JSON", params)
        raw = result.bytes()
        if not raw:
            return []
        return list(orjson.loads(raw)["data"])

    def _schema(self, table: str) -> dict[str, str]:
        if table not in self._schemas:
            rows = self.query(
                "SELECT name, type FROM system.columns WHERE database = {db:String} "
                "AND table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') "
                "ORDER BY position",
                {"db": self.database, "t": table},
            )
            if not rows:
                raise WarehouseError(f"table {self.database}.{table} does not exist")
            self._schemas[table] = {r["name"]: r["type"] for r in rows}
        return self._schemas[table]

    def insert(self, table: str, columns: Columns, *, dedup_token: str | None = None) -> int:
        check_identifier(table, "table")
        rows = column_lengths(columns)
        if rows == 0:
            return 0
        schema = self._schema(table)
        unknown = [name for name in columns if name not in schema]
        if unknown:
            raise RowsRefusedError(f"table {self.database}.{table} has no columns {unknown}")
        try:
            arrays = [to_arrow_array(schema[name], values) for name, values in columns.items()]
        except CONVERSION_ERRORS as exc:  # pyarrow's ArrowInvalid and ArrowTypeError among them
            raise RowsRefusedError(f"a value does not fit its column in {table}: {exc}") from exc
        block = pa.Table.from_arrays(arrays, names=list(columns))  # noqa: F841 (read by chDB)
        names = ", ".join(f"`{name}`" for name in columns)
        settings = ""
        if dedup_token is not None:
            settings = f" SETTINGS insert_deduplication_token = '{check_dedup_token(dedup_token)}'"
        # chDB's Python() table function finds `block` by name in this frame.
        self._run(
            f"INSERT INTO {self.database}.{table} ({names}) SELECT * FROM Python(block){settings}",
            "CSV", None, inserting=True,
        )
        return rows

    def close(self) -> None:
        # The embedded server lives as long as the process; nothing per-object to free.
        self._schemas.clear()
