"""Correlation IDs listed from the correlation index: recent, failing or slow first."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from api.params import Page, TimeRange
from api.queries.scope import TENANT_COLUMN, QueryScope
from core.types import Row
from schemas.tables import CORRELATION_INDEX_TABLE
from sinks.warehouse import Warehouse

Sort = Literal["recent", "failing", "slow"]
# Every order ends in the ID so that pages never overlap.
ORDER_BY: dict[Sort, str] = {
    "recent": "last_ns DESC, CorrelationId",
    "failing": "error_spans + error_logs DESC, last_ns DESC, CorrelationId",
    "slow": "max_duration_ns DESC, last_ns DESC, CorrelationId",
}


@dataclass(frozen=True)
class CorrelationListing:
    """Which IDs to list: active in ``time`` (their first-to-last span overlaps it), touching
    ``service`` when given, in ``sort`` order."""

    time: TimeRange
    sort: Sort = "recent"
    service: str | None = None


def _list_sql(scope: QueryScope, listing: CorrelationListing) -> str:
    table = scope.table(CORRELATION_INDEX_TABLE)
    tenant = scope.tenant_filter(TENANT_COLUMN)
    having = " HAVING has(services, {service:String})" if listing.service is not None else ""
    # An index row is one insert block's partial aggregate: the IDs are picked by any row in
    # the range, then every row of those IDs is merged, so counts and times are whole.
    return (
        f"SELECT CorrelationId, toUnixTimestamp64Nano(min(FirstSeen)) AS first_ns, "
        f"toUnixTimestamp64Nano(max(LastSeen)) AS last_ns, arraySort(groupUniqArrayArray(Services)) AS services, "
        f"length(groupUniqArrayArray(TraceIds)) AS traces, uniqExactMerge(Spans) AS spans, "
        f"uniqExactMerge(Logs) AS logs, uniqExactMerge(ErrorSpans) AS error_spans, "
        f"uniqExactMerge(ErrorLogs) AS error_logs, max(MaxDurationNs) AS max_duration_ns "
        f"FROM {table} WHERE CorrelationId IN ("
        f"SELECT CorrelationId FROM {table} WHERE LastSeen >= fromUnixTimestamp64Nano({{start_ns:Int64}}) "
        f"AND FirstSeen < fromUnixTimestamp64Nano({{end_ns:Int64}}){tenant}){tenant} "
        f"GROUP BY CorrelationId{having} ORDER BY {ORDER_BY[listing.sort]} "
        f"LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}"
    )


async def list_correlations(warehouse: Warehouse, scope: QueryScope, listing: CorrelationListing,
                            page: Page) -> list[Row]:
    """One page (plus one row, so the caller can tell whether a next page exists) of the
    correlation IDs ``listing`` selects, with their merged index counts. Raises WarehouseError
    (or WarehouseUnavailableError) from the warehouse."""
    params = scope.params(start_ns=listing.time.start_ns, end_ns=listing.time.end_ns,
                          limit=page.limit + 1, offset=page.offset)
    if listing.service is not None:
        params["service"] = listing.service
    return await asyncio.to_thread(warehouse.query, _list_sql(scope, listing), params)
