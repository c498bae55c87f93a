"""Reading the per-minute and hourly rollups (sinks/rollups.py)."""
from __future__ import annotations

from api.queries.scope import TENANT_COLUMN, QueryScope
from schemas.tables import HOURLY_ROLLUP_OF

# A rollup counts whole minutes, so a window [start_ns, end_ns) is widened to the minutes it
# touches: from its first minute to its last.
_FIRST_MINUTE = "toStartOfMinute(fromUnixTimestamp64Nano({start_ns:Int64}))"
_LAST_MINUTE = "toStartOfMinute(fromUnixTimestamp64Nano({end_ns:Int64} - 1))"
_MINUTES = f"Minute >= {_FIRST_MINUTE} AND Minute <= {_LAST_MINUTE}"
# The hours whose minutes all lie in that span (none when it holds no whole hour).
_WHOLE_HOURS = (f"Minute >= toStartOfHour({_FIRST_MINUTE} + INTERVAL 59 MINUTE) "
                f"AND Minute < toStartOfHour({_LAST_MINUTE} + INTERVAL 1 MINUTE)")


def rollup_rows(scope: QueryScope, table: str, where: str = "", hours: bool = True) -> str:
    """A subquery of ``table``'s rows in the window (params start_ns, end_ns) and the scope's
    tenant. FINAL leaves each period's latest computation: newer rows replace older ones,
    and keys a newer computation no longer has are deleted.

    With ``hours``, the window's whole hours are read from the hourly table (one row per key
    instead of 60) and only the minutes at its edges from ``table``: for readers that sum
    over the window. Readers that bucket by minute pass ``hours=False``."""
    tenant = scope.tenant_filter(TENANT_COLUMN)
    minutes = f"SELECT * FROM {scope.table(table)} FINAL WHERE {_MINUTES}{tenant}{where}"
    if not hours:
        return f"({minutes})"
    return (f"({minutes} AND NOT ({_WHOLE_HOURS}) UNION ALL "
            f"SELECT * FROM {scope.table(HOURLY_ROLLUP_OF[table])} FINAL WHERE {_WHOLE_HOURS}{tenant}{where})")
