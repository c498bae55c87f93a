"""The Warehouse protocol and the choice of backend by URL."""
from __future__ import annotations

import re
from typing import Any, Mapping, Protocol, Sequence

from core.errors import WarehouseError

Row = dict[str, Any]
Columns = Mapping[str, Sequence[Any]]

# Identifiers cannot be bound parameters, so every table or database name that
# reaches SQL text is checked against this first.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_DEDUP_TOKEN = re.compile(r"^[A-Za-z0-9_.:/\-]{1,512}$")


class Warehouse(Protocol):
    """What every backend offers. SQL values always travel as bound parameters
    written ``{name:Type}`` in the SQL text (ClickHouse server-side parameters)."""

    database: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, OPTIMIZE).

        Raises WarehouseUnavailableError when ClickHouse cannot be reached,
        WarehouseError when the statement itself failed."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a SELECT and return its rows as dicts of plain Python values.

        DateTime64 values come back as text; select them with
        ``toUnixTimestamp64Nano`` where the nanoseconds matter."""

    def insert(self, table: str, columns: Columns, *, dedup_token: str | None = None) -> int:
        """Insert columns (name -> values, all the same length) into ``table``.

        DateTime64 values are integers in the column's unit, Maps are dicts,
        Arrays are lists. With ``dedup_token`` a repeated block with the same token
        is dropped by ClickHouse (tables need ``non_replicated_deduplication_window``).
        Returns the row count; when it returns, ClickHouse has the rows."""

    def close(self) -> None:
        """Release connections; the object is unusable afterwards."""


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise WarehouseError."""
    if not _IDENTIFIER.match(name):
        raise WarehouseError(f"{what} {name!r} is not a plain identifier [A-Za-z_][A-Za-z0-9_]*")
    return name


def check_dedup_token(token: str) -> str:
    """Settings cannot be bound parameters either; tokens are restricted to a safe charset."""
    if not _DEDUP_TOKEN.match(token):
        raise WarehouseError(f"insert_deduplication_token {token!r} has characters outside [A-Za-z0-9_.:/-]")
    return token


def column_lengths(columns: Columns) -> int:
    """The common length of all columns; WarehouseError if they differ."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise WarehouseError(f"insert columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)
