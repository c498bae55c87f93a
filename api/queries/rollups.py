"""Reading the per-minute rollups (sinks/rollups.py)."""
from __future__ import annotations

from api.queries.scope import TENANT_COLUMN, QueryScope

# Minutes that overlap [start_ns, end_ns): a rollup counts whole minutes, so a window is
# widened to the minutes it touches.
_MINUTES = ("Minute > fromUnixTimestamp64Nano({start_ns:Int64}) - INTERVAL 1 MINUTE "
            "AND Minute < fromUnixTimestamp64Nano({end_ns:Int64})")


def rollup_rows(scope: QueryScope, table: str, where: str = "") -> str:
    """A subquery of ``table``'s rows in the window (params start_ns, end_ns) and the scope's
    tenant. FINAL leaves each minute's latest computation: newer rows replace older ones,
    and keys a newer computation no longer has are deleted."""
    return (f"(SELECT * FROM {scope.table(table)} FINAL "
            f"WHERE {_MINUTES}{scope.tenant_filter(TENANT_COLUMN)}{where})")
