"""A migrated database of a test's own, dropped when the test is done with it.

Hundreds of tests each take a fresh database, and migrating one through every migration (60
statements and the retention check) costs 0.55-0.8 s on chDB on the 2-core test box. So on
chDB a test's database is a copy of a template that this process migrates once with the real
``migrate()`` (once per set of retention settings, which the TTLs are rendered from): every
table's CREATE as system.tables prints it back (columns, indexes, TTLs, settings) with the
template's name replaced by the test's, then the rows migrate() left in the template (the
migrations' bookkeeping; its backfills find nothing to copy in empty tables), then the views,
so that the copied rows feed none and each view's source and target exist. A copy costs
0.25-0.33 s, nearly all of it chDB creating the 22 tables. ``migrate()`` on a copy applies
nothing and its retention check changes nothing (tests/integration/test_warehouse.py compares
a copy with a migrated database). A ClickHouse server (OLLYSTACK_CLICKHOUSE_URL) has each
database migrated for real, as does ``warehouse_before``.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.settings import ClickHouseSettings
from sinks.backend import chdb_folder, open_warehouse
from sinks.migrations import load_migrations, migrate
from sinks.retention import ttl_placeholders
from sinks.warehouse import Warehouse


@dataclass(frozen=True)
class _Template:
    """A database migrated for real, and the scripts that copy it (its name in them stands
    for the copy's, a name no DDL text holds elsewhere)."""

    name: str
    tables: str  # CREATE DATABASE and every table's CREATE, as one script
    filled: tuple[str, ...]  # the tables migrate() put rows in
    views: str  # every view's CREATE, as one script


# (chDB folder, the TTL clauses the settings render) -> the template migrated for them.
_templates: dict[tuple[Path, tuple[tuple[str, str], ...]], _Template] = {}


def _template(clickhouse: ClickHouseSettings, data_dir: Path) -> _Template:
    """This process's template for ``clickhouse``'s retention settings, migrated the first
    time it is asked for."""
    key = (chdb_folder(data_dir), tuple(sorted(ttl_placeholders(clickhouse).items())))
    if key not in _templates:
        settings = clickhouse.model_copy(update={"database": f"migrated_template_{uuid.uuid4().hex}"})
        wh = open_warehouse(settings, data_dir)
        try:
            migrate(wh, settings)
            objects = wh.query("SELECT engine, name, total_rows, create_table_query FROM system.tables "
                               "WHERE database = {db:String}", {"db": settings.database})
        finally:
            wh.close()
        tables = [o for o in objects if not o["engine"].endswith("View")]
        views = [o for o in objects if o["engine"].endswith("View")]
        _templates[key] = _Template(
            name=settings.database,
            tables=";\n".join([f"CREATE DATABASE {settings.database}"] + [t["create_table_query"] for t in tables]),
            filled=tuple(t["name"] for t in tables if t["total_rows"]),
            views=";\n".join(v["create_table_query"] for v in views))
    return _templates[key]


def copy_template(wh: Warehouse, template: _Template) -> None:
    """Create the warehouse's database as a copy of ``template``: its tables, their rows,
    then its views (so that the copied rows feed none)."""
    wh.execute(template.tables.replace(template.name, wh.database))
    for table in template.filled:
        wh.execute(f"INSERT INTO {wh.database}.{table} SELECT * FROM {template.name}.{table}")
    if template.views:
        wh.execute(template.views.replace(template.name, wh.database))


@contextlib.contextmanager
def migrated_warehouse(clickhouse: ClickHouseSettings, data_dir: Path) -> Iterator[Warehouse]:
    """The warehouse ``clickhouse`` names (chDB under ``data_dir`` when it has no URL),
    migrated (on chDB, a copy of the template); its database dropped and the warehouse
    closed on the way out."""
    wh = open_warehouse(clickhouse, data_dir)
    try:
        if clickhouse.url.get_secret_value():
            migrate(wh, clickhouse)
        else:
            copy_template(wh, _template(clickhouse, data_dir))
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
