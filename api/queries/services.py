"""Per-service request statistics and the service map, computed from stored spans."""
from __future__ import annotations

import asyncio

from api.params import TimeRange
from api.queries.scope import ERROR_STATUS, QueryScope, time_filter
from core.types import Row
from schemas.tables import TRACES_TABLE
from sinks.warehouse import Warehouse

# A request is a span that enters a service: a root, or a server or consumer span.
ENTRY_SPAN = ("(ParentSpanId = '' OR SpanKind IN "
              "('Server', 'Consumer', 'SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER'))")


async def service_stats(warehouse: Warehouse, scope: QueryScope, time: TimeRange, limit: int) -> list[Row]:
    """Per service over ``time``: spans, requests (entry spans), their errors and the
    p50/p95/p99 of their durations in ns (empty when the service had no requests)."""
    sql = (
        f"SELECT service, count() AS spans, countIf(entry) AS requests, countIf(entry AND failed) AS errors, "
        f"countIf(failed) AS error_spans, "
        f"if(countIf(entry) = 0, [], quantilesIf(0.5, 0.95, 0.99)(Duration, entry)) AS quantiles_ns "
        f"FROM (SELECT toString(ServiceName) AS service, Duration, {ERROR_STATUS} AS failed, "
        f"{ENTRY_SPAN} AS entry FROM {scope.table(TRACES_TABLE)} FINAL "
        f"WHERE 1 = 1{time_filter()}{scope.tenant_filter()}) "
        f"GROUP BY service ORDER BY requests DESC, spans DESC, service LIMIT {{limit:UInt32}}"
    )
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, params)


async def service_edges(warehouse: Warehouse, scope: QueryScope, time: TimeRange, limit: int) -> list[Row]:
    """Calls between services over ``time``: a child span whose parent span is in another
    service. Per (caller, callee): calls, errors (failed child spans) and the p50/p95/p99
    of the child spans' durations in ns."""
    table = scope.table(TRACES_TABLE)
    sql = (
        f"SELECT p.service AS caller, c.service AS callee, count() AS calls, countIf(c.failed) AS errors, "
        f"quantiles(0.5, 0.95, 0.99)(c.Duration) AS quantiles_ns "
        f"FROM (SELECT TraceId, SpanId, toString(ServiceName) AS service FROM {table} FINAL "
        f"WHERE 1 = 1{time_filter()}{scope.tenant_filter()}) AS p "
        f"INNER JOIN (SELECT TraceId, ParentSpanId, toString(ServiceName) AS service, Duration, "
        f"{ERROR_STATUS} AS failed FROM {table} FINAL "
        f"WHERE ParentSpanId != ''{time_filter()}{scope.tenant_filter()}) AS c "
        f"ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId "
        f"WHERE p.service != c.service "
        f"GROUP BY caller, callee ORDER BY calls DESC, caller, callee LIMIT {{limit:UInt32}}"
    )
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, params)
