"""The process's embedded ClickHouse engine (chDB): one session, one call at a time.

The chDB warehouse stores through it, and the ingest stage decodes and reshapes raw OTLP
with it whatever the warehouse is: records are parsed by the engine's Protobuf input
format into a staging database that lives in memory only, so nothing of a batch survives
the process and nothing per span is built in Python."""
from __future__ import annotations

import atexit
import itertools
import logging
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from core.errors import WarehouseError
from sinks.warehouse import check_identifier, failure

# Memory-only: a crash leaves no staging table behind to clean up.
STAGING_DATABASE = "ollystack_stage"
_SESSION_SETTINGS = (
    "SET output_format_json_quote_64bit_integers = 0",
    "SET session_timezone = 'UTC'",
    # The query condition cache answered wrong: after a read of a trace's spans filtered on
    # CorrelationId (outside a LIMIT BY subquery), the same trace's spans read without that
    # filter came back empty (chDB 26.x; tests/integration/test_api.py caught it).
    "SET use_query_condition_cache = 0",
    f"CREATE DATABASE IF NOT EXISTS {STAGING_DATABASE} ENGINE = Memory",
)
_engines: dict[tuple[Path, str], Engine] = {}
_engines_lock = threading.Lock()
_names = itertools.count()
_CLOSE_WAIT_S = 10.0
log = logging.getLogger(__name__)

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
    return param_text(value)


def param_text(value: Any) -> str:
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


def _clear_staging_leftovers(path: Path) -> None:
    # The staging database lives in memory, but its Join tables still get a folder each under
    # data/, and a process killed mid-batch leaves them behind. Its successor counts table
    # names from 0 again, and creating a table whose folder exists fails ("already exists"):
    # a worker restarted after kill -9 could not decode. Called once the connection proves
    # this process owns the folder, before any staging table of its own exists.
    leftovers = path / "data" / STAGING_DATABASE
    if leftovers.exists():
        shutil.rmtree(leftovers, ignore_errors=True)
        log.info("staging tables of an earlier process removed", extra={"path": str(leftovers)})


def staging_name(kind: str) -> str:
    """A table name in the staging database no other batch of this process uses."""
    return f"{STAGING_DATABASE}.{check_identifier(kind, 'staging kind')}_{next(_names)}"


class Engine:
    """One chDB session on a data folder. Thread-safe: its calls run one at a time.

    Use ``Engine.open(path, session)``: chDB runs one embedded server per process, bound to
    the first folder it opened, and every user of a session name shares that session.
    A session runs one statement at a time (two threads in one connection at once can
    deadlock: chDB's Python() table function reads Arrow data under the GIL from inside
    the engine, so one thread holds the GIL waiting for the engine while the other holds
    the engine waiting for the GIL); two sessions run side by side, each on a core."""

    def __init__(self, path: Path, connection: Any) -> None:
        self.path = path
        self._conn = connection
        self._calls_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, session: str = "main") -> Engine:
        """The process's engine ``session`` on ``path``; WarehouseError when chDB cannot
        open it (for instance because this process already opened another folder)."""
        import chdb

        path = Path(path).resolve()
        with _engines_lock:
            if (path, session) not in _engines:
                path.mkdir(parents=True, exist_ok=True)
                try:
                    conn = chdb.connect(str(path))
                except RuntimeError as exc:
                    # chDB lets one process use a folder: the usual cause is a running
                    # `ollystack up` (or worker, api) on the same data_dir.
                    raise WarehouseError(
                        f"chDB cannot open {path}: {exc}. chDB allows one process per data folder: if an "
                        "ollystack process (up, worker, api) runs on it, ask its API instead (see README), "
                        "or stop it first") from exc
                if not any(opened == path for opened, _ in _engines):
                    _clear_staging_leftovers(path)
                for statement in _SESSION_SETTINGS:
                    conn.query(statement)
                _engines[path, session] = cls(path, conn)
            return _engines[path, session]

    def close(self) -> None:
        """Close the connection; the engine cannot be used after. Waits (a while) for a
        call in progress to finish."""
        acquired = self._calls_lock.acquire(timeout=_CLOSE_WAIT_S)
        if not acquired:
            log.warning("chDB is still busy; closing its connection anyway", extra={"path": str(self.path)})
        try:
            self._conn.close()
        finally:
            if acquired:
                self._calls_lock.release()

    def run(self, sql: str, fmt: str = "CSV", params: Mapping[str, Any] | None = None, *,
            inserting: bool = False) -> Any:
        """Run one statement and return chDB's result in ``fmt``.

        Raises WarehouseError (RowsRefusedError for data the engine refuses while
        ``inserting``, WarehouseUnavailableError for a refusal that passes with time)."""
        bound = {k: param_text(v) for k, v in params.items()} if params else None
        try:
            with self._calls_lock:
                return self._conn.query(sql, fmt, params=bound)
        except RuntimeError as exc:  # chdb's ChdbError derives from RuntimeError
            raise failure(str(exc).strip(), inserting=inserting) from exc

    def arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """The result of a SELECT as an Arrow table."""
        result: pa.Table = self.run(sql, "ArrowTable", params)
        return result

    def load_arrow(self, table: str, data: pa.Table, settings: Mapping[str, str | int] | None = None) -> None:
        """Insert an Arrow table whose column names are ``table``'s. The engine reads its
        buffers where they are (chDB's Python() table function finds ``data`` by name in
        this frame): no serialized copy, which a batch of 100k spans felt as page faults.

        Raises WarehouseError (RowsRefusedError for rows ClickHouse refuses as data)."""
        clause = ", ".join(f"{check_identifier(k, 'setting')} = {_setting(v)}" for k, v in (settings or {}).items())
        sql = f"INSERT INTO {table} SELECT * FROM Python(data)" + (f" SETTINGS {clause}" if clause else "")
        try:
            with self._calls_lock:
                self._conn.query(sql, "CSV")
        except RuntimeError as exc:  # chdb's ChdbError derives from RuntimeError
            raise failure(str(exc).strip(), inserting=True) from exc

    def load(self, table: str, fmt: str, data: bytes | memoryview, settings: Mapping[str, str | int], *,
             inserting: bool = False) -> None:
        """Stream ``data`` (in input format ``fmt``) into ``table``, whole or not at all.

        Raises WarehouseError naming the engine's complaint when the bytes do not parse
        (RowsRefusedError while ``inserting`` rows ClickHouse refuses)."""
        clause = ", ".join(f"{check_identifier(k, 'setting')} = {_setting(v)}" for k, v in settings.items())
        sql = f"INSERT INTO {table} SETTINGS {clause}" if clause else f"INSERT INTO {table}"
        with self._calls_lock:
            try:
                inserter = self._conn.send_insert(sql, fmt)
                try:
                    inserter.append(data)
                    inserter.finish()
                except BaseException:
                    inserter.cancel()
                    raise
            except RuntimeError as exc:
                raise failure(str(exc).strip(), inserting=inserting) from exc


def _setting(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.translate(_QUOTED_ESCAPES) + "'"


@atexit.register
def _close_engines() -> None:
    """Close every engine while Python still runs: left to the C++ destructors at exit,
    chDB's shutdown sometimes deadlocked (about one `ollystack up` stop in five hung
    after printing "stopped", its main thread waiting on a mutex in the exit handlers)."""
    with _engines_lock:
        engines = list(_engines.values())[::-1]  # sessions opened later first, the main one last
        _engines.clear()
    for engine in engines:
        engine.close()
