"""Metric exemplars: by metric name and time range, and the correlation IDs of a trace's
exemplars; an exemplar belongs to the tenant of its own resource (its Tenant column)."""
from __future__ import annotations

import asyncio

from api.params import Page, TimeRange
from api.queries.scope import BY_TRACE_SETTINGS, TENANT_COLUMN, QueryScope, time_filter
from core.types import Row
from schemas.row_columns import EXEMPLAR_COLUMNS
from schemas.tables import EXEMPLARS_TABLE
from sinks.warehouse import Warehouse


async def metric_exemplars(warehouse: Warehouse, scope: QueryScope, metric_name: str, time: TimeRange,
                           service: str | None, page: Page) -> list[Row]:
    """Exemplars of ``metric_name`` in ``time``, newest first; one page plus one row."""
    where = time_filter() + scope.tenant_filter(TENANT_COLUMN)
    params: dict[str, object] = {"metric": metric_name, "start_ns": time.start_ns, "end_ns": time.end_ns,
                                 "limit": page.limit + 1, "offset": page.offset}
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
    """Non-empty CorrelationIds stored on the trace's exemplars of the scope's tenant,
    earliest first."""
    sql = (
        f"SELECT CorrelationId FROM {scope.table(EXEMPLARS_TABLE)} FINAL "
        f"WHERE TraceId = {{trace_id:String}} AND CorrelationId != ''{scope.tenant_filter(TENANT_COLUMN)} "
        f"GROUP BY CorrelationId ORDER BY min(Timestamp) LIMIT 10 {BY_TRACE_SETTINGS}"
    )
    rows = await asyncio.to_thread(warehouse.query, sql, scope.params(trace_id=trace_id))
    return [row["CorrelationId"] for row in rows]
