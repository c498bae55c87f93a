"""Per-service request statistics and the service map, read from the per-minute rollups."""
from __future__ import annotations

import asyncio

from api.params import TimeRange
from api.queries.rollups import rollup_rows
from api.queries.scope import ERROR_STATUS, QueryScope
from core.types import Row
from schemas.tables import SERVICE_EDGES_TABLE, SERVICE_ROLLUP_TABLE
from sinks.warehouse import Warehouse


async def service_stats(warehouse: Warehouse, scope: QueryScope, time: TimeRange, limit: int) -> list[Row]:
    """Per service over the minutes ``time`` touches: spans, requests (entry spans: root,
    server or consumer), their errors, failed spans and the p50/p95/p99 of the requests'
    durations in ns (empty when the service had no requests)."""
    sql = (
        f"SELECT toString(ServiceName) AS service, sum(Spans) AS spans, sumIf(Spans, Entry = 1) AS requests, "
        f"sumIf(Spans, Entry = 1 AND {ERROR_STATUS}) AS errors, sumIf(Spans, {ERROR_STATUS}) AS error_spans, "
        f"if(requests = 0, [], quantilesBFloat16MergeIf(0.5, 0.95, 0.99)(DurationNs, Entry = 1)) AS quantiles_ns "
        f"FROM {rollup_rows(scope, SERVICE_ROLLUP_TABLE)} "
        f"GROUP BY service ORDER BY requests DESC, spans DESC, service LIMIT {{limit:UInt32}}"
    )
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, params)


async def service_edges(warehouse: Warehouse, scope: QueryScope, time: TimeRange, limit: int) -> list[Row]:
    """Calls over the minutes ``time`` touches, per (caller, callee, callee kind): calls,
    errors and the p50/p95/p99 of the calls' durations in ns. A callee is a service (a
    child span in another service), or a database or peer a client span named."""
    sql = (
        f"SELECT toString(Caller) AS caller, toString(Callee) AS callee, toString(CalleeKind) AS callee_kind, "
        f"sum(Calls) AS calls, sum(Errors) AS errors, "
        f"quantilesBFloat16Merge(0.5, 0.95, 0.99)(DurationNs) AS quantiles_ns "
        f"FROM {rollup_rows(scope, SERVICE_EDGES_TABLE)} "
        f"GROUP BY caller, callee, callee_kind ORDER BY calls DESC, caller, callee, callee_kind LIMIT {{limit:UInt32}}"
    )
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, params)
