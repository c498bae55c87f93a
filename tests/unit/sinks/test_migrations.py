"""Migration files render for any database and retention; TTL clauses follow the settings."""
from __future__ import annotations

import pytest

from core.settings import ClickHouseSettings
from sinks.migrations import load_migrations


def test_migrations_are_ordered_and_fully_rendered() -> None:
    migrations = load_migrations("olly", ClickHouseSettings())
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and versions[0] == 1
    for m in migrations:
        for statement in m.statements:
            assert "$" not in statement, f"{m.name}: unrendered placeholder"
            # Run again after an interruption, every statement does no harm: DDL says IF
            # [NOT] EXISTS; a backfill fills a table (of this migration or an earlier one) whose
            # engine collapses repeated rows.
            if statement.startswith("INSERT INTO "):
                target = statement.split()[2]
                created = [s for earlier in migrations if earlier.version <= m.version for s in earlier.statements
                           if s.startswith(f"CREATE TABLE IF NOT EXISTS {target}")]
                assert created and ("ENGINE = AggregatingMergeTree" in created[0]
                                    or "ENGINE = ReplacingMergeTree" in created[0]), \
                    f"{m.name}: a repeated backfill of {target} would duplicate rows"
            else:
                assert "IF NOT EXISTS" in statement or "IF EXISTS" in statement, \
                    f"{m.name}: not idempotent: {statement[:60]}"


@pytest.mark.parametrize(
    ("days", "expected"),
    [(0, None), (7, "TTL toDateTime(Timestamp) + toIntervalDay(7)")],
    ids=["no-ttl", "seven-days"],
)
def test_traces_ttl_follows_the_setting(days: int, expected: str | None) -> None:
    traces = load_migrations("db1", ClickHouseSettings(traces_ttl_days=days))[0].statements[0]
    assert "CREATE TABLE IF NOT EXISTS db1.otel_traces" in traces
    if expected is None:
        assert "TTL" not in traces
    else:
        assert expected in traces


def test_exemplars_keep_thirty_days_by_default() -> None:
    text = "\n".join(s for m in load_migrations("d", ClickHouseSettings()) for s in m.statements)
    assert "CREATE TABLE IF NOT EXISTS d.metric_exemplars" in text
    assert "TTL toDateTime(Timestamp) + toIntervalDay(30)" in text
