"""Metric exemplars: by metric name and time range, and the correlation ID of an exemplar's trace."""
from __future__ import annotations

import asyncio

from api.params import Page, TimeRange
from api.queries.columns import EXEMPLAR_COLUMNS
from api.queries.scope import BY_TRACE_SETTINGS, QueryScope, time_filter
from core.tenancy import TENANT_ATTRIBUTE
from core.types import Row
from schemas.tables import EXEMPLARS_TABLE, TRACES_TABLE
from sinks.warehouse import Warehouse

# Exemplars carry no resource attributes; with a tenant an exemplar is shown when its trace
# has spans of that tenant within a day of the searched range.
_TENANT_SLACK_NS = 86_400 * 1_000_000_000


def _tenant_traces(scope: QueryScope) -> str:
    if scope.tenant is None:
        return ""
    return (
        f" AND TraceId IN (SELECT TraceId FROM {scope.table(TRACES_TABLE)} "
        f"WHERE ResourceAttributes['{TENANT_ATTRIBUTE}'] = {{tenant:String}} "
        f"AND Timestamp >= fromUnixTimestamp64Nano({{slack_start_ns:Int64}}) "
        f"AND Timestamp < fromUnixTimestamp64Nano({{slack_end_ns:Int64}}))"
    )


async def metric_exemplars(warehouse: Warehouse, scope: QueryScope, metric_name: str, time: TimeRange,
                           service: str | None, page: Page) -> list[Row]:
    """Exemplars of ``metric_name`` in ``time``, newest first; one page plus one row."""
    where = time_filter() + _tenant_traces(scope)
    params = {"metric": metric_name, "start_ns": time.start_ns, "end_ns": time.end_ns,
              "limit": page.limit + 1, "offset": page.offset}
    if scope.tenant is not None:
        params["slack_start_ns"] = max(0, time.start_ns - _TENANT_SLACK_NS)
        params["slack_end_ns"] = time.end_ns + _TENANT_SLACK_NS
    if service is not None:
        where += " AND ServiceName = {service:String}"
        params["service"] = service
    sql = (
        f"SELECT {EXEMPLAR_COLUMNS} FROM {scope.table(EXEMPLARS_TABLE)} FINAL "
        f"WHERE MetricName = {{metric:String}}{where} "
        f"ORDER BY Timestamp DESC, TraceId, SpanId LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}"
    )
    return await asyncio.to_thread(warehouse.query, sql, scope.params(**params))


async def exemplar_own_ids(warehouse: Warehouse, scope: QueryScope, trace_id: str) -> list[str]:
    """Non-empty CorrelationIds stored on the trace's exemplars, earliest first (not with a
    tenant: exemplars cannot be attributed to one on their own)."""
    if scope.tenant is not None:
        return []
    sql = (
        f"SELECT CorrelationId FROM {scope.table(EXEMPLARS_TABLE)} FINAL "
        f"WHERE TraceId = {{trace_id:String}} AND CorrelationId != '' "
        f"GROUP BY CorrelationId ORDER BY min(Timestamp) LIMIT 10 {BY_TRACE_SETTINGS}"
    )
    rows = await asyncio.to_thread(warehouse.query, sql, {"trace_id": trace_id})
    return [row["CorrelationId"] for row in rows]
