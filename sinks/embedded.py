"""The chDB backend: the ClickHouse engine embedded in this process, one data folder per process."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from core.errors import RowsRefusedError, WarehouseError
from core.types import Columns, Row
from sinks.arrow_types import to_arrow_array
from sinks.engine import Engine
from sinks.warehouse import (
    CONVERSION_ERRORS,
    check_dedup_token,
    check_identifier,
    column_lengths,
)


def insert_settings(dedup_token: str | None) -> dict[str, str | int]:
    """Settings of every insert: the batch's dedup token, and no merge pass at insert time.

    ReplacingMergeTree's optimize_on_insert sorts and collapses every inserted block: it
    made span inserts three times dearer (about 1.0 against 0.3 CPU-s per 100k spans,
    measured on chDB), while FINAL, which every read uses, hides the same duplicates."""
    settings: dict[str, str | int] = {"optimize_on_insert": 0}
    if dedup_token is not None:
        settings["insert_deduplication_token"] = check_dedup_token(dedup_token)
    return settings


class EmbeddedWarehouse:
    """Warehouse on chDB. Thread-safe: calls from several threads run one at a time."""

    def __init__(self, path: Path, database: str = "default", session: str = "main") -> None:
        self.path = Path(path)
        self.database = check_identifier(database, "database")
        self.engine = Engine.open(self.path, session)
        self._schemas: dict[str, dict[str, str]] = {}

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.engine.run(sql, "CSV", params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        raw = self.engine.run(sql, "JSON", params).bytes()
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

    def _target(self, table: str, names: list[str]) -> str:
        check_identifier(table, "table")
        schema = self._schema(table)
        unknown = [name for name in names if name not in schema]
        if unknown:
            raise RowsRefusedError(f"table {self.database}.{table} has no columns {unknown}")
        return f"{self.database}.{table} ({', '.join(f'`{name}`' for name in names)})"

    def insert(self, table: str, columns: Columns, *, dedup_token: str | None = None) -> int:
        rows = column_lengths(columns)
        if rows == 0:
            return 0
        target = self._target(table, list(columns))
        schema = self._schema(table)
        try:
            arrays = [to_arrow_array(schema[name], values) for name, values in columns.items()]
        except CONVERSION_ERRORS as exc:  # pyarrow's ArrowInvalid and ArrowTypeError among them
            raise RowsRefusedError(f"a value does not fit its column in {table}: {exc}") from exc
        self.engine.load_arrow(target, pa.Table.from_arrays(arrays, names=list(columns)), insert_settings(dedup_token))
        return rows

    def insert_arrow(self, table: str, rows: pa.Table, *, dedup_token: str | None = None) -> int:
        if rows.num_rows == 0:
            return 0
        self.engine.load_arrow(self._target(table, rows.column_names), rows, insert_settings(dedup_token))
        count: int = rows.num_rows
        return count

    def close(self) -> None:
        # The embedded server lives as long as the process; nothing per-object to free.
        self._schemas.clear()
