"""Reading the per-minute rollups (sinks/rollups.py): the latest computation of each minute."""
from __future__ import annotations

from api.queries.scope import TENANT_COLUMN, QueryScope

# Minutes that overlap [start_ns, end_ns): a rollup counts whole minutes, so a window is
# widened to the minutes it touches.
_MINUTES = ("Minute > fromUnixTimestamp64Nano({start_ns:Int64}) - INTERVAL 1 MINUTE "
            "AND Minute < fromUnixTimestamp64Nano({end_ns:Int64})")


def rollup_rows(scope: QueryScope, table: str, where: str = "") -> str:
    """A subquery of ``table``'s rows in the window (params start_ns, end_ns) and the scope's
    tenant, from the latest computation of each minute only.

    Each refresh writes a minute's full rows with one newer Version; a key the newer
    computation no longer has (a peer edge that became a service edge once the callee's
    span arrived) must not be read, so rows of older versions are left out."""
    name = scope.table(table)
    return (f"(SELECT * FROM {name} FINAL WHERE {_MINUTES}{scope.tenant_filter(TENANT_COLUMN)}{where} "
            f"AND (Minute, Version) IN (SELECT Minute, max(Version) FROM {name} WHERE {_MINUTES} GROUP BY Minute))")
