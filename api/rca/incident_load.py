"""Reading one incident's evidence from the warehouse into IncidentData."""
from __future__ import annotations

import asyncio

from api.params import TimeRange
from api.queries.incident import call_rows, service_traffic_rows, service_window_rows
from api.queries.scope import QueryScope
from api.rca.incident_evidence import IncidentData, calls_of, traffic_by_service, windows_of
from sinks.warehouse import Warehouse

# The baseline is the period just before the window, as long as the window, and at least this long.
MIN_BASELINE_NS = 60 * 1_000_000_000


def baseline_range(time: TimeRange) -> TimeRange:
    length = max(time.end_ns - time.start_ns, MIN_BASELINE_NS)
    return TimeRange(max(0, time.start_ns - length), time.start_ns)


async def load_incident(warehouse: Warehouse, scope: QueryScope, time: TimeRange, threshold: float,
                        history: TimeRange | None = None) -> IncidentData:
    """The anomaly windows, traces and calls of ``time`` in ``scope``, the traces of the
    baseline period before it, and (given ``history``) the anomaly windows of that range.

    Raises WarehouseError (WarehouseUnavailableError when retrying can help)."""
    before = baseline_range(time)
    windows, now, then, calls = await asyncio.gather(
        service_window_rows(warehouse, scope, time), service_traffic_rows(warehouse, scope, time),
        service_traffic_rows(warehouse, scope, before), call_rows(warehouse, scope, time))
    past = await service_window_rows(warehouse, scope, history) if history is not None else []
    return IncidentData(time.start_ns, time.end_ns, threshold, windows_of(windows), traffic_by_service(now),
                        traffic_by_service(then), calls_of(calls), windows_of(past))
