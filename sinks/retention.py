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
    HOURLY_ROLLUP_OF,
    LOGS_TABLE,
    METRIC_TABLES,
    ROLLUP_DIRTY_TABLE,
    ROLLUP_MINUTES_TABLE,
    SERVICE_EDGES_TABLE,
    SERVICE_ROLLUP_TABLE,
    TRACE_ID_TS_TABLE,
    TRACE_LINKS_TABLE,
    TRACE_ROWS_TABLE,
    TRACES_TABLE,
)
from schemas.trace_rows import EXEMPLAR_KIND, LOG_KIND, SPAN_KIND
from sinks.warehouse import Warehouse, check_identifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """A table's rows (those matching ``where``, if given) expire ``<setting>`` days after
    ``column``; ``$placeholder`` in its CREATE TABLE stands for the TTL clause. A table with
    rows of several kinds has one entry per kind, each with its ``where``."""

    table: str
    column: str
    setting: str  # a *_ttl_days field of ClickHouseSettings; 0 keeps rows forever
    placeholder: str
    where: str | None = None

    def days(self, ch: ClickHouseSettings) -> int:
        days: int = getattr(ch, self.setting)
        return days

    def rule(self, ch: ClickHouseSettings) -> str | None:
        """The TTL rule the setting asks for (as ClickHouse prints it back), or None."""
        days = self.days(ch)
        if days <= 0:
            return None
        rule = f"toDateTime({self.column}) + toIntervalDay({int(days)})"
        return rule if self.where is None else f"{rule} WHERE {self.where}"


@dataclass(frozen=True)
class TableRetention:
    """The entries of one table: its TTL is their rules, in registry order."""

    entries: tuple[Retention, ...]

    @property
    def table(self) -> str:
        return self.entries[0].table

    @property
    def placeholder(self) -> str:
        return self.entries[0].placeholder

    def expression(self, ch: ClickHouseSettings) -> str | None:
        """The table's TTL expression, or None for no TTL."""
        rules = [rule for rule in (entry.rule(ch) for entry in self.entries) if rule]
        return ", ".join(rules) or None

    def describe(self, ch: ClickHouseSettings) -> str:
        return ", ".join(f"{entry.setting}={entry.days(ch)}" for entry in self.entries)


def by_table(registry: tuple[Retention, ...]) -> list[TableRetention]:
    """The registry's entries grouped by table, in the order tables first appear.

    Raises ValueError when entries of one table disagree on its placeholder."""
    tables: dict[str, list[Retention]] = {}
    for entry in registry:
        tables.setdefault(entry.table, []).append(entry)
    for entries in tables.values():
        if len({entry.placeholder for entry in entries}) > 1:
            raise ValueError(f"{entries[0].table}: its entries must share one placeholder")
    return [TableRetention(tuple(entries)) for entries in tables.values()]


# One line per table with a retention; a new table (a rollup, say) adds its line here and
# its $placeholder to its CREATE TABLE.
RETENTION: tuple[Retention, ...] = (
    Retention(TRACES_TABLE, "Timestamp", "traces_ttl_days", "traces_ttl"),
    Retention(TRACE_ID_TS_TABLE, "Start", "traces_ttl_days", "trace_id_ts_ttl"),
    *(Retention(table, "Minute", "traces_ttl_days", "traces_ttl_minute")
      for table in (SERVICE_ROLLUP_TABLE, SERVICE_EDGES_TABLE, *HOURLY_ROLLUP_OF.values(), ROLLUP_DIRTY_TABLE,
                    ROLLUP_MINUTES_TABLE)),
    Retention(LOGS_TABLE, "Timestamp", "logs_ttl_days", "logs_ttl"),
    # The lookup copy (0012) keeps each kind of row as long as its source table does.
    Retention(TRACE_ROWS_TABLE, "Timestamp", "traces_ttl_days", "trace_rows_ttl", f"Kind = {SPAN_KIND}"),
    Retention(TRACE_ROWS_TABLE, "Timestamp", "logs_ttl_days", "trace_rows_ttl", f"Kind = {LOG_KIND}"),
    Retention(TRACE_ROWS_TABLE, "Timestamp", "exemplars_ttl_days", "trace_rows_ttl", f"Kind = {EXEMPLAR_KIND}"),
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
    for entry in by_table(registry):
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
    for entry in by_table(registry):
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
        change = f"{entry.table}: TTL {current or 'none'} -> {wanted or 'none'} ({entry.describe(ch)})"
        log.info("retention changed: %s", change,
                 extra={"table": entry.table, "from": current, "to": wanted, "setting": entry.describe(ch)})
        changed.append(change)
    return changed
