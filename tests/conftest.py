"""Shared fixtures: the real Kafka broker (one per session) and chDB databases (one per test)."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import ClickHouseSettings
from sinks.backend import chdb_folder
from sinks.engine import Engine
from sinks.warehouse import Warehouse
from tests.support.warehouses import migrated_warehouse


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaBroker]:
    """A real single-node KRaft broker on a free loopback port, stopped at session end."""
    from pipeline.local_broker import LocalKafkaBroker

    broker = LocalKafkaBroker(tmp_path_factory.mktemp("kafka"), message_max_bytes=32 * 1024 * 1024)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: LocalKafkaBroker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def unique() -> str:
    """A short name unique to this test, for its own topics, groups and databases."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # chDB allows one data folder per process, so the whole session shares one and
    # every test gets a database of its own inside it.
    return tmp_path_factory.mktemp("ollystack-data")


@pytest.fixture
def engine(chdb_dir: Path) -> Engine:
    """The process's embedded engine (the same session every warehouse fixture uses)."""
    return Engine.open(chdb_folder(chdb_dir))


@pytest.fixture
def warehouse(chdb_dir: Path, unique: str) -> Iterator[Warehouse]:
    """A migrated database of this test's own on the embedded engine, dropped afterwards."""
    with migrated_warehouse(ClickHouseSettings(database=unique), chdb_dir) as wh:
        yield wh


if False:  # pragma: no cover - typing only
    from pipeline.local_broker import LocalKafkaBroker
