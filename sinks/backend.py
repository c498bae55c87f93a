"""The warehouse backend the settings name: a ClickHouse server by URL, else chDB under the data folder."""
from __future__ import annotations

from pathlib import Path

from core.errors import ConfigError
from core.settings import ClickHouseSettings
from sinks.embedded import EmbeddedWarehouse
from sinks.engine import Engine
from sinks.server import ServerWarehouse
from sinks.warehouse import Warehouse, check_identifier


def chdb_folder(data_dir: Path) -> Path:
    """Where chDB keeps its data under ``data_dir``."""
    return Path(data_dir) / "chdb"


def open_warehouse(clickhouse: ClickHouseSettings, data_dir: Path) -> Warehouse:
    """``clickhouse://`` / ``clickhouses://`` URL: the server backend; empty URL: chDB in
    ``<data_dir>/chdb``. Raises ConfigError for any other scheme."""
    url = clickhouse.url.get_secret_value()
    database = check_identifier(clickhouse.database, "database")
    if not url:
        return EmbeddedWarehouse(chdb_folder(data_dir), database)
    if url.startswith(("clickhouse://", "clickhouses://")):
        return ServerWarehouse(url, database)
    # Only the scheme is shown: the rest of the URL may hold a password.
    shown = f"scheme {url.split('://', 1)[0][:20]!r} is not allowed" if "://" in url else "has no scheme"
    raise ConfigError(
        f"OLLYSTACK_CLICKHOUSE_URL: {shown}; "
        "use clickhouse://user:pass@host:9000/db, clickhouses:// for TLS, or leave it empty for chDB"
    )


def open_engine(warehouse: Warehouse, data_dir: Path) -> Engine:
    """The engine this process decodes raw records with: a session of its own beside the
    warehouse's when that is chDB (so a batch is decoded while the one before is inserted,
    each on a core); with a server, chDB on a folder of its own under ``data_dir`` that
    holds nothing but in-memory staging (so each worker process needs its own data_dir)."""
    engine = getattr(warehouse, "engine", None)  # an embedded warehouse, perhaps wrapped
    if isinstance(engine, Engine):
        return Engine.open(engine.path, "staging")
    return Engine.open(Path(data_dir) / "chdb-stage")


def decoding_reader(warehouse: Warehouse) -> Warehouse:
    """The warehouse as the ingest stage reads it while decoding (the trace states of a
    batch): with chDB, through the decoding session of open_engine, because the warehouse's
    own session is busy inserting the batch before and a lookup waited for that insert
    (660 ms a batch of 40k spans, a third of decoding it); with a server, the warehouse."""
    engine = getattr(warehouse, "engine", None)
    if isinstance(engine, Engine):
        return EmbeddedWarehouse(engine.path, warehouse.database, session="staging")
    return warehouse


def describe(clickhouse: ClickHouseSettings, data_dir: Path) -> str:
    """Where the warehouse is, for start-up output (never the URL: it may hold a password)."""
    if clickhouse.url.get_secret_value():
        return "server (OLLYSTACK_CLICKHOUSE_URL)"
    return f"chDB {chdb_folder(data_dir)}"
