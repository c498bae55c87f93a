"""The Warehouse protocol, the identifier rules SQL text relies on, and what a failure means."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

import pyarrow as pa

from core.errors import RowsRefusedError, WarehouseError, WarehouseUnavailableError
from core.types import Columns, Row

# Identifiers cannot be bound parameters, so every table or database name that
# reaches SQL text is checked against this first.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_DEDUP_TOKEN = re.compile(r"^[A-Za-z0-9_.:/\-]{1,512}$")
# ClickHouse names its error in the message, "... (TOO_MANY_PARTS)" from both backends.
_ERROR_NAME = re.compile(r"\(([A-Z][A-Z0-9_]{2,})\)")
# Error names (prefixes) of refusals
# that pass with time, unlike type or syntax errors: retry these with backoff.
_TRANSIENT = ("TOO_MANY_PARTS", "MEMORY_LIMIT_EXCEEDED", "TIMEOUT_EXCEEDED", "TABLE_IS_READ_ONLY", "ABORTED",
              "CANNOT_ALLOCATE_MEMORY", "TOO_MANY_SIMULTANEOUS_QUERIES", "NETWORK_ERROR", "SOCKET_TIMEOUT")
# Refusals of the data itself: the batch holds a record that can never be stored as it is.
_DATA = ("CANNOT_PARSE", "CANNOT_CONVERT_TYPE", "TYPE_MISMATCH", "VALUE_IS_OUT_OF_RANGE", "NO_SUCH_COLUMN_IN_TABLE",
         "THERE_IS_NO_COLUMN", "ILLEGAL_TYPE_OF_ARGUMENT", "TOO_LARGE_STRING_SIZE", "INCORRECT_DATA",
         "DECIMAL_OVERFLOW", "ARGUMENT_OUT_OF_BOUND", "CANNOT_INSERT_VALUE_OF_DIFFERENT_SIZE_INTO_TUPLE")
# What converting Python values into a column block raises for a value that does not fit.
CONVERSION_ERRORS: tuple[type[Exception], ...] = (OverflowError, TypeError, ValueError, UnicodeError)


class Warehouse(Protocol):
    """What every backend offers. SQL values always travel as bound parameters
    written ``{name:Type}`` in the SQL text (ClickHouse server-side parameters)."""

    database: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, OPTIMIZE).

        Raises WarehouseUnavailableError when ClickHouse cannot be reached or is busy,
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
        Returns the row count; when it returns, ClickHouse has the rows. Raises
        RowsRefusedError when a value cannot be stored in its column."""

    def insert_arrow(self, table: str, rows: pa.Table, *, dedup_token: str | None = None) -> int:
        """Insert an Arrow table whose column names are insert columns of ``table`` and whose
        types are the ones the engine gives for them (schemas/enriched.py).

        Same contract as ``insert``: returns the row count once ClickHouse has the rows;
        RowsRefusedError when ClickHouse refuses them as data."""

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
    """The common length of all columns; RowsRefusedError if they differ."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise RowsRefusedError(f"insert columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def failure(message: str, *, inserting: bool = False) -> WarehouseError:
    """The error a ClickHouse failure message stands for: retriable for transient
    refusals, RowsRefusedError for a refusal of the data an insert carried."""
    names = set(_ERROR_NAME.findall(message))
    if any(name.startswith(_TRANSIENT) for name in names):
        return WarehouseUnavailableError(message)
    if inserting and any(name.startswith(_DATA) for name in names):
        return RowsRefusedError(message)
    return WarehouseError(message)
