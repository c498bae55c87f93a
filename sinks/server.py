"""The ClickHouse server backend, through clickhouse-driver's native protocol."""
from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

from core.errors import ConfigError, RowsRefusedError, WarehouseUnavailableError
from core.types import Columns, Row
from sinks.arrow_types import arrow_to_columns
from sinks.warehouse import (
    CONVERSION_ERRORS,
    check_dedup_token,
    check_identifier,
    column_lengths,
    failure,
)


def _plain(value: Any) -> Any:
    # Match what chDB's JSON output gives, so callers see one shape from both backends.
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def client_from_url(url: str) -> Any:
    """A clickhouse-driver Client for ``clickhouse[s]://user:pass@host:port/db?opt=…``.

    Options: ``compression`` (lz4, zstd, none; default lz4), ``verify`` (true/false)."""
    from clickhouse_driver import Client

    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    secure = parts.scheme == "clickhouses"
    compression: Any = options.get("compression", "lz4")
    if compression == "none":
        compression = False
    if not parts.hostname:
        raise ConfigError("OLLYSTACK_CLICKHOUSE_URL: no host in the URL")
    return Client(
        host=parts.hostname,
        port=parts.port or (9440 if secure else 9000),
        user=parts.username or "default",
        password=parts.password or "",
        database=(parts.path or "/").strip("/") or "default",
        secure=secure,
        verify=options.get("verify", "true") != "false",
        compression=compression,
        # use_query_condition_cache: off, as on chDB (sinks/engine.py says why).
        settings={"server_side_params": True, "use_query_condition_cache": 0},
    )


class ServerWarehouse:
    """Warehouse on a ClickHouse server. One connection; calls from several threads take turns."""

    def __init__(self, url: str, database: str = "default") -> None:
        self.database = check_identifier(database, "database")
        self._client = client_from_url(url)
        # A clickhouse-driver Client is one connection and not safe across threads.
        self._lock = threading.Lock()

    def _run(self, sql: str, params: Any = None, *, inserting: bool = False, **kwargs: Any) -> Any:
        from clickhouse_driver import errors as ch_errors

        try:
            with self._lock:
                return self._client.execute(sql, params, **kwargs)
        except (ch_errors.NetworkError, ch_errors.SocketTimeoutError, OSError, EOFError) as exc:
            raise WarehouseUnavailableError(f"ClickHouse server unreachable: {exc}") from exc
        except ch_errors.Error as exc:
            raise failure(str(exc).strip(), inserting=inserting) from exc
        except CONVERSION_ERRORS as exc:  # the driver packs values into columns client-side
            if not inserting:
                raise
            raise RowsRefusedError(f"a value does not fit its column: {exc!r}") from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, dict(params) if params else None)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        rows, types = self._run(sql, dict(params) if params else None, with_column_types=True)
        names = [name for name, _ in types]
        return [dict(zip(names, map(_plain, row), strict=True)) for row in rows]

    def insert(self, table: str, columns: Columns, *, dedup_token: str | None = None) -> int:
        check_identifier(table, "table")
        rows = column_lengths(columns)
        if rows == 0:
            return 0
        # No merge pass at insert time: see sinks/embedded.py insert_settings.
        settings: dict[str, Any] = {"optimize_on_insert": 0}
        if dedup_token is not None:
            settings["insert_deduplication_token"] = check_dedup_token(dedup_token)
        names = ", ".join(f"`{name}`" for name in columns)
        self._run(
            f"INSERT INTO {self.database}.{table} ({names}) VALUES",
            [list(values) for values in columns.values()],
            columnar=True,
            settings=settings,
            inserting=True,
        )
        return rows

    def insert_arrow(self, table: str, rows: pa.Table, *, dedup_token: str | None = None) -> int:
        return self.insert(table, arrow_to_columns(rows), dedup_token=dedup_token)

    def close(self) -> None:
        self._client.disconnect()
