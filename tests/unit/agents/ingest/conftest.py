"""A migrated database per test module for the ingest tests."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import ClickHouseSettings
from sinks.warehouse import Warehouse
from tests.support.warehouses import migrated_warehouse


@pytest.fixture(scope="module")
def ingest_warehouse(chdb_dir: Path) -> Iterator[Warehouse]:
    """Like the ``warehouse`` fixture, but shared by one module's tests: ingest only reads
    trace links from it (tests/support/ingesting.py builds a fresh TraceStates per call and
    stores nothing), so tests cannot see each other's work, and migrating once per module
    instead of once per test (about half a second each) keeps the modules fast."""
    with migrated_warehouse(ClickHouseSettings(database="t" + uuid.uuid4().hex[:10]), chdb_dir) as wh:
        yield wh
