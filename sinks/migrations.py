"""Versioned, idempotent ClickHouse migrations: one DDL text for both backends."""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from string import Template

from core.errors import MigrationError, WarehouseError
from core.settings import ClickHouseSettings
from schemas import trace_rows
from schemas.ddl import MIGRATIONS_DIR
from schemas.tables import MIGRATIONS_TABLE
from sinks.retention import apply_retention, ttl_placeholders
from sinks.rollups import hour_placeholders
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def template_values(database: str, ch: ClickHouseSettings) -> dict[str, str]:
    """What the $placeholders in the DDL files stand for: the database, retention TTLs
    (sinks/retention.py), the SELECTs that feed the lookup copy (schemas/trace_rows.py) and
    the backfill of the hourly rollups (sinks/rollups.py)."""
    return {"db": database, **ttl_placeholders(ch), **trace_rows.placeholders(database),
            **hour_placeholders(database)}


def _split(sql: str) -> tuple[str, ...]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return tuple(s.strip() for s in body.split(";") if s.strip())


def load_migrations(database: str, ch: ClickHouseSettings) -> list[Migration]:
    """Every migration file, rendered for ``database`` and the retention settings, in order."""
    values = template_values(database, ch)
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        try:
            text = Template(path.read_text()).substitute(values)
        except KeyError as exc:
            raise MigrationError(f"{path.name}: unknown placeholder {exc}") from None
        found.append(Migration(int(match.group(1)), match.group(2), _split(text)))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


def _ensure_bookkeeping(wh: Warehouse) -> None:
    if wh.database != "default":
        wh.execute(f"CREATE DATABASE IF NOT EXISTS {wh.database}")
    wh.execute(
        f"CREATE TABLE IF NOT EXISTS {wh.database}.{MIGRATIONS_TABLE} "
        "(Version UInt32, Name String, AppliedAt DateTime64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY Version"
    )


def applied_versions(wh: Warehouse) -> set[int]:
    """Versions already applied to the warehouse's database."""
    _ensure_bookkeeping(wh)
    rows = wh.query(f"SELECT DISTINCT Version FROM {wh.database}.{MIGRATIONS_TABLE}")
    return {int(r["Version"]) for r in rows}


def migrate(wh: Warehouse, ch: ClickHouseSettings) -> list[str]:
    """Apply every pending migration, then bring each table's TTL in line with its
    retention setting (sinks/retention.py); return the names applied (empty when up to date).

    Each statement is idempotent (IF NOT EXISTS), so a migration interrupted half way is
    simply run again. Raises MigrationError naming the migration and statement that failed."""
    done = applied_versions(wh)
    applied = []
    for migration in load_migrations(wh.database, ch):
        if migration.version in done:
            continue
        for number, statement in enumerate(migration.statements, 1):
            try:
                wh.execute(statement)
            except WarehouseError as exc:
                if exc.retriable:
                    raise
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}, statement {number}: {exc}"
                ) from exc
        wh.execute(
            f"INSERT INTO {wh.database}.{MIGRATIONS_TABLE} (Version, Name, AppliedAt) "
            "VALUES ({v:UInt32}, {n:String}, fromUnixTimestamp64Milli({t:Int64}))",
            {"v": migration.version, "n": migration.name, "t": int(time.time() * 1000)},
        )
        applied.append(f"{migration.version:04d}_{migration.name}")
        log.info("migration applied", extra={"migration": applied[-1]})
    # Every start runs this (up, the worker, the API, `ollystack migrate`): a TTL is
    # rendered into CREATE TABLE once, and a changed setting must still take effect.
    apply_retention(wh, ch)
    return applied
