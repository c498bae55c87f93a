"""A migrated database of a test's own, dropped when the test is done with it."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from core.settings import ClickHouseSettings
from sinks.backend import open_warehouse
from sinks.migrations import load_migrations, migrate
from sinks.warehouse import Warehouse


@contextlib.contextmanager
def migrated_warehouse(clickhouse: ClickHouseSettings, data_dir: Path) -> Iterator[Warehouse]:
    """The warehouse ``clickhouse`` names (chDB under ``data_dir`` when it has no URL),
    migrated; its database dropped and the warehouse closed on the way out."""
    wh = open_warehouse(clickhouse, data_dir)
    migrate(wh, clickhouse)
    try:
        yield wh
    finally:
        wh.execute(f"DROP DATABASE IF EXISTS {clickhouse.database} SYNC")
        wh.close()


@contextlib.contextmanager
def warehouse_before(clickhouse: ClickHouseSettings, data_dir: Path, version: int) -> Iterator[Warehouse]:
    """The warehouse ``clickhouse`` names with only the migrations older than ``version``
    applied (as a database of an earlier release holds them), for tests of what ``version``
    does to data stored before it; dropped and closed on the way out."""
    wh = open_warehouse(clickhouse, data_dir)
    try:
        wh.execute(f"CREATE DATABASE IF NOT EXISTS {clickhouse.database}")
        for migration in load_migrations(clickhouse.database, clickhouse):
            if migration.version < version:
                for statement in migration.statements:
                    wh.execute(statement)
        yield wh
    finally:
        wh.execute(f"DROP DATABASE IF EXISTS {clickhouse.database} SYNC")
        wh.close()
