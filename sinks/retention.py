"""Table retention from the settings: one registry renders the DDL's TTL placeholders and,
at every start, brings each table's stored TTL in line with its setting.

A TTL is rendered into CREATE TABLE once; without the start-up check a changed setting
would change nothing. The settings are the source of truth: a table whose TTL differs
(edited by hand, or set by an older release) is altered to match, and the change logged."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from core.settings import ClickHouseSettings
from schemas.tables import (
    ALERTS_TABLE,
    ANOMALIES_TABLE,
    CORRELATION_INDEX_TABLE,
    CORRELATION_TRACES_TABLE,
    EXEMPLARS_TABLE,
    LOGS_TABLE,
    METRIC_TABLES,
    ROLLUP_DIRTY_TABLE,
    ROLLUP_MINUTES_TABLE,
    SERVICE_EDGES_TABLE,
    SERVICE_ROLLUP_TABLE,
    TRACE_ID_TS_TABLE,
    TRACE_LINKS_TABLE,
    TRACE_SPANS_TABLE,
    TRACES_TABLE,
)
from sinks.warehouse import Warehouse, check_identifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """A table's rows expire ``<setting>`` days after ``column``; ``$placeholder`` in its
    CREATE TABLE stands for the TTL clause."""

    table: str
    column: str
    setting: str  # a *_ttl_days field of ClickHouseSettings; 0 keeps rows forever
    placeholder: str

    def days(self, ch: ClickHouseSettings) -> int:
        days: int = getattr(ch, self.setting)
        return days

    def expression(self, ch: ClickHouseSettings) -> str | None:
        """The TTL expression the setting asks for, or None for no TTL."""
        days = self.days(ch)
        return f"toDateTime({self.column}) + toIntervalDay({int(days)})" if days > 0 else None


# One line per table with a retention; a new table (a rollup, say) adds its line here and
# its $placeholder to its CREATE TABLE.
RETENTION: tuple[Retention, ...] = (
    Retention(TRACES_TABLE, "Timestamp", "traces_ttl_days", "traces_ttl"),
    Retention(TRACE_SPANS_TABLE, "Timestamp", "traces_ttl_days", "traces_ttl"),
    Retention(TRACE_ID_TS_TABLE, "Start", "traces_ttl_days", "trace_id_ts_ttl"),
    *(Retention(table, "Minute", "traces_ttl_days", "traces_ttl_minute")
      for table in (SERVICE_ROLLUP_TABLE, SERVICE_EDGES_TABLE, ROLLUP_DIRTY_TABLE, ROLLUP_MINUTES_TABLE)),
    Retention(LOGS_TABLE, "Timestamp", "logs_ttl_days", "logs_ttl"),
    *(Retention(table, "TimeUnix", "metrics_ttl_days", "metrics_ttl") for table in METRIC_TABLES),
    Retention(EXEMPLARS_TABLE, "Timestamp", "exemplars_ttl_days", "exemplars_ttl"),
    Retention(TRACE_LINKS_TABLE, "LastSeen", "correlation_ttl_days", "correlation_ttl_last_seen"),
    Retention(CORRELATION_INDEX_TABLE, "LastSeen", "correlation_ttl_days", "correlation_ttl_last_seen"),
    Retention(CORRELATION_TRACES_TABLE, "LastSeen", "correlation_ttl_days", "correlation_ttl_last_seen"),
    Retention(ANOMALIES_TABLE, "Timestamp", "anomalies_ttl_days", "anomalies_ttl"),
    Retention(ALERTS_TABLE, "UpdatedAt", "alerts_ttl_days", "alerts_ttl"),
)
# The table TTL in engine_full: after " TTL ", up to the SETTINGS clause or the end.
_TABLE_TTL = re.compile(r" TTL (.+?)(?: SETTINGS |$)")


def ttl_placeholders(ch: ClickHouseSettings, registry: tuple[Retention, ...] = RETENTION) -> dict[str, str]:
    """$placeholder -> ``TTL <expression>`` (or '' for none), for the DDL templates.

    Raises ValueError when two tables share a placeholder but not its column and setting."""
    out: dict[str, str] = {}
    for entry in registry:
        expression = entry.expression(ch)
        clause = f"TTL {expression}" if expression else ""
        if out.setdefault(entry.placeholder, clause) != clause:
            raise ValueError(f"${entry.placeholder}: tables sharing it must share its column and setting")
    return out


def stored_ttls(wh: Warehouse) -> dict[str, str | None]:
    """Table -> its table TTL expression (None without one), for every table of the
    warehouse's database; one query, so the check costs one round trip at start."""
    rows = wh.query("SELECT name, engine_full FROM system.tables WHERE database = {db:String}", {"db": wh.database})
    out: dict[str, str | None] = {}
    for row in rows:
        found = _TABLE_TTL.search(row["engine_full"])
        out[row["name"]] = found.group(1).strip() if found else None
    return out


def apply_retention(wh: Warehouse, ch: ClickHouseSettings,
                    registry: tuple[Retention, ...] = RETENTION) -> list[str]:
    """Alter every table whose TTL differs from its setting: ``MODIFY TTL`` to the
    setting's, ``REMOVE TTL`` for 0. Returns (and logs) one line per table changed.

    Tables not created yet are skipped (their CREATE renders the setting). Raises
    WarehouseError from the warehouse."""
    changed = []
    stored = stored_ttls(wh)
    for entry in registry:
        if entry.table not in stored:
            continue
        current, wanted = stored[entry.table], entry.expression(ch)
        if current == wanted:
            continue
        table = f"{wh.database}.{check_identifier(entry.table, 'table')}"
        if wanted is None:
            wh.execute(f"ALTER TABLE {table} REMOVE TTL")
        else:
            wh.execute(f"ALTER TABLE {table} MODIFY TTL {wanted}")
        change = f"{entry.table}: TTL {current or 'none'} -> {wanted or 'none'} ({entry.setting}={entry.days(ch)})"
        log.info("retention changed: %s", change,
                 extra={"table": entry.table, "from": current, "to": wanted, "setting": entry.setting})
        changed.append(change)
    return changed
