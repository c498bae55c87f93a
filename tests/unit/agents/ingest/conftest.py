"""A migrated database per test module for the ingest tests."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import ClickHouseSettings
from sinks.backend import open_warehouse
from sinks.migrations import migrate
from sinks.warehouse import Warehouse


@pytest.fixture(scope="module")
def ingest_warehouse(chdb_dir: Path) -> Iterator[Warehouse]:
    """Like the ``warehouse`` fixture, but shared by one module's tests: ingest only reads
    trace links from it (tests/support/ingesting.py builds a fresh TraceStates per call and
    stores nothing), so tests cannot see each other's work, and migrating once per module
    instead of once per test (about half a second each) keeps the modules fast."""
    database = "t" + uuid.uuid4().hex[:10]
    wh = open_warehouse(ClickHouseSettings(database=database), chdb_dir)
    migrate(wh, ClickHouseSettings())
    try:
        yield wh
    finally:
        wh.execute(f"DROP DATABASE IF EXISTS {database} SYNC")
        wh.close()
