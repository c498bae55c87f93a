"""The API's warehouse calls, one at a time.

Neither backend takes concurrent statements safely: chDB's session shares query parameters
between threads (measured: a parameterized query ran with another thread's values, others
failed with "Substitution ... is not set"), and a clickhouse-driver Client is one connection.
Parameters carry the tenant, so a mix-up would show one tenant another's rows: every API
call goes through one process-wide lock until the backends serialise (or pool) themselves."""
from __future__ import annotations

import threading
from typing import Any, Mapping

from sinks.warehouse import Columns, Row, Warehouse

_LOCK = threading.Lock()


class SerializedWarehouse:
    """A Warehouse that runs one statement at a time across every instance in the process."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.database = inner.database

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        with _LOCK:
            self.inner.execute(sql, params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        with _LOCK:
            return self.inner.query(sql, params)

    def insert(self, table: str, columns: Columns, *, dedup_token: str | None = None) -> int:
        with _LOCK:
            return self.inner.insert(table, columns, dedup_token=dedup_token)

    def close(self) -> None:
        self.inner.close()
