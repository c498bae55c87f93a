"""Retention follows its settings: a TTL changed between two starts on the same data folder
is in SHOW CREATE TABLE after the second, 0 removes it, and rows kept survive."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_cli import REPO, ollystack_env, run_cli

from core.settings import ClickHouseSettings
from schemas.tables import ALERTS_TABLE, ANOMALIES_TABLE, TRACE_LINKS_TABLE, TRACES_TABLE
from sinks.warehouse import Warehouse

_SHOW = """
import json, sys
from core.settings import load_settings
from sinks.backend import open_warehouse
settings = load_settings()
wh = open_warehouse(settings.clickhouse, settings.data_dir)
out = {t: wh.query(f"SHOW CREATE TABLE {wh.database}.{t}")[0]["statement"] for t in sys.argv[1:]}
print(json.dumps(out))
wh.close()
"""
TABLES = (TRACES_TABLE, TRACE_LINKS_TABLE, ANOMALIES_TABLE, ALERTS_TABLE)


def show_create(env: dict[str, str]) -> dict[str, str]:
    """SHOW CREATE TABLE of TABLES, read by a process of its own on the data folder."""
    done = subprocess.run([sys.executable, "-c", _SHOW, *TABLES], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shown: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {table: " ".join(text.split()) for table, text in shown.items()}


def test_a_changed_ttl_setting_is_applied_at_the_next_start(tmp_path: Path) -> None:
    first = run_cli("migrate", env=ollystack_env(tmp_path, OLLYSTACK_CLICKHOUSE_TRACES_TTL_DAYS="7"))
    assert first.returncode == 0, first.stderr
    before = show_create(ollystack_env(tmp_path))
    assert "TTL toDateTime(Timestamp) + toIntervalDay(7)" in before[TRACES_TABLE]
    assert "TTL toDateTime(Timestamp) + toIntervalDay(7)" in before[ANOMALIES_TABLE]  # as long as traces
    assert " TTL " not in before[TRACE_LINKS_TABLE]

    restart = ollystack_env(tmp_path, OLLYSTACK_CLICKHOUSE_TRACES_TTL_DAYS="3",
                            OLLYSTACK_CLICKHOUSE_CORRELATION_TTL_DAYS="14",
                            OLLYSTACK_CLICKHOUSE_ALERTS_TTL_DAYS="90")
    second = run_cli("migrate", env=restart)
    assert second.returncode == 0 and second.stdout.strip() == "schema is up to date", second.stderr
    assert "ollystack_trace_links: TTL none -> toDateTime(LastSeen) + toIntervalDay(14)" in second.stderr
    after = show_create(ollystack_env(tmp_path))
    assert "TTL toDateTime(Timestamp) + toIntervalDay(3) SETTINGS" in after[TRACES_TABLE]
    assert "TTL toDateTime(Timestamp) + toIntervalDay(3) SETTINGS" in after[ANOMALIES_TABLE]
    assert "TTL toDateTime(LastSeen) + toIntervalDay(14)" in after[TRACE_LINKS_TABLE]
    assert "TTL toDateTime(UpdatedAt) + toIntervalDay(90)" in after[ALERTS_TABLE]

    again = run_cli("migrate", env=restart)
    assert "retention changed" not in again.stderr  # nothing differs: nothing altered

    forever = run_cli("migrate", env=ollystack_env(tmp_path, OLLYSTACK_CLICKHOUSE_TRACES_TTL_DAYS="0"))
    assert forever.returncode == 0, forever.stderr
    last = show_create(ollystack_env(tmp_path))
    assert all(" TTL " not in statement for statement in last.values()), last


def test_zero_removes_a_ttl_and_keeps_old_rows(warehouse: Warehouse) -> None:
    from sinks.migrations import migrate

    table = f"{warehouse.database}.{TRACE_LINKS_TABLE}"

    def store_old_link(cid: str) -> list[str]:
        old_ns = 1_600_000_000 * 1_000_000_000  # 2020
        warehouse.insert(TRACE_LINKS_TABLE, {"Tenant": [""], "TraceId": ["a" * 32], "CorrelationId": [cid],
                                             "Source": ["attribute"], "Priority": [1], "FirstSeen": [old_ns],
                                             "LastSeen": [old_ns]})
        warehouse.execute(f"OPTIMIZE TABLE {table} FINAL")
        return [r["CorrelationId"] for r in warehouse.query(f"SELECT CorrelationId FROM {table}")]

    migrate(warehouse, ClickHouseSettings(database=warehouse.database, correlation_ttl_days=1))
    assert store_old_link("expired") == []  # the 1-day TTL drops it
    migrate(warehouse, ClickHouseSettings(database=warehouse.database, correlation_ttl_days=0))
    assert store_old_link("kept") == ["kept"]
    statement = warehouse.query(f"SHOW CREATE TABLE {table}")[0]["statement"]
    assert " TTL " not in " ".join(statement.split())
