"""The retention registry: every table's CREATE renders its TTL from its setting, and tables
sharing a placeholder must agree on it."""
from __future__ import annotations

import re

import pytest

from core.settings import ClickHouseSettings
from sinks.migrations import load_migrations
from sinks.retention import RETENTION, Retention, ttl_placeholders

EVERY_SETTING_11_DAYS = ClickHouseSettings(**{entry.setting: 11 for entry in RETENTION})


def create_statement(table: str, ch: ClickHouseSettings) -> str:
    for migration in load_migrations("d", ch):
        for statement in migration.statements:
            if re.match(rf"CREATE TABLE IF NOT EXISTS d\.{table}\b", statement):
                return statement
    raise AssertionError(f"no CREATE TABLE for {table}")


@pytest.mark.parametrize("entry", RETENTION, ids=[e.table for e in RETENTION])
def test_each_table_renders_its_ttl_from_its_setting(entry: Retention) -> None:
    assert f"TTL toDateTime({entry.column}) + toIntervalDay(11)" in create_statement(entry.table,
                                                                                    EVERY_SETTING_11_DAYS)
    forever = ClickHouseSettings(**{e.setting: 0 for e in RETENTION})
    assert "TTL" not in create_statement(entry.table, forever).split("ENGINE", 1)[1]


def test_anomalies_and_alerts_are_kept_as_long_as_traces_unless_set() -> None:
    assert (ClickHouseSettings(traces_ttl_days=9).anomalies_ttl_days,
            ClickHouseSettings(traces_ttl_days=9).alerts_ttl_days) == (9, 9)
    assert ClickHouseSettings(traces_ttl_days=9, alerts_ttl_days=90).alerts_ttl_days == 90


def test_tables_sharing_a_placeholder_must_agree() -> None:
    clashing = (*RETENTION, Retention("ollystack_rollup", "Minute", "metrics_ttl_days", "metrics_ttl"))
    with pytest.raises(ValueError, match=r"\$metrics_ttl"):
        ttl_placeholders(ClickHouseSettings(metrics_ttl_days=5), clashing)
    assert ttl_placeholders(ClickHouseSettings(metrics_ttl_days=0), clashing)["metrics_ttl"] == ""


def test_links_and_the_index_are_kept_as_long_as_the_longer_lived_data_unless_set() -> None:
    assert ClickHouseSettings(traces_ttl_days=9, logs_ttl_days=30).correlation_ttl_days == 30
    assert ClickHouseSettings(traces_ttl_days=9).correlation_ttl_days == 0  # logs are kept forever
    assert ClickHouseSettings(traces_ttl_days=9, logs_ttl_days=30, correlation_ttl_days=5).correlation_ttl_days == 5
