"""A migrated database of a test's own, dropped when the test is done with it."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from core.settings import ClickHouseSettings
from sinks.backend import open_warehouse
from sinks.migrations import migrate
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
