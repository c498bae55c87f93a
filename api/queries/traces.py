"""Traces: one trace's spans by ID, and trace search by span filters (span and resource attributes too)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from api.conditions import Condition
from api.params import Page, TimeRange
from api.queries.attributes import conditions_filter
from api.queries.scope import (
    ERROR_STATUS,
    TRACE_ID_SET,
    QueryScope,
    time_filter,
    trace_id_list,
)
from core.types import Row
from schemas.tables import TRACES_TABLE
from schemas.trace_rows import LOG_KIND, SPAN_KIND
from sinks.warehouse import Warehouse

# Attribute filters may skip granules under FINAL without widening to whole key ranges (5x
# faster at 1M spans): the versions of a span are replays of one record, so they carry the
# same attributes and match alike. A replay whose attributes came out different (a
# cardinality cap reached on one run only) can then be found by the value it had before.
ATTRIBUTE_SEARCH_SETTINGS = " SETTINGS use_skip_indexes_if_final_exact_mode = 0"

# status parameter -> the StatusCode spellings stored for it (old exporters wrote STATUS_CODE_*)
STATUS_CODES: dict[str, tuple[str, str]] = {
    "ok": ("Ok", "STATUS_CODE_OK"),
    "error": ("Error", "STATUS_CODE_ERROR"),
    "unset": ("Unset", "STATUS_CODE_UNSET"),
}


@dataclass(frozen=True)
class TraceFilter:
    """Filters one span must all match for its trace to be found (like one TraceQL spanset)."""

    time: TimeRange
    service: str | None = None
    operation: str | None = None
    status: str | None = None  # a key of STATUS_CODES
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    conditions: tuple[Condition, ...] = ()  # on SpanAttributes / ResourceAttributes


async def trace_spans(warehouse: Warehouse, scope: QueryScope, trace_id: str, max_spans: int) -> list[Row]:
    """The spans of one trace in time order (at most ``max_spans``)."""
    sql = (
        f"SELECT Row FROM {scope.trace_rows('LookupKey = {trace_id:String}', str(SPAN_KIND))} "
        f"ORDER BY Timestamp, SpanId LIMIT {{max_rows:UInt32}}"
    )
    rows = await asyncio.to_thread(warehouse.query, sql, scope.params(trace_id=trace_id, max_rows=max_spans))
    return [orjson.loads(row["Row"]) for row in rows]


async def trace_own_ids(warehouse: Warehouse, scope: QueryScope, trace_id: str) -> list[str]:
    """Non-empty CorrelationIds stored on the trace's spans and logs visible in ``scope``,
    earliest first (spans before logs at equal times)."""
    sql = (
        f"SELECT CorrelationId FROM {scope.trace_rows('LookupKey = {trace_id:String}', f'{SPAN_KIND}, {LOG_KIND}')} "
        f"WHERE CorrelationId != '' GROUP BY CorrelationId ORDER BY min(Timestamp), min(Kind) LIMIT 10"
    )
    rows = await asyncio.to_thread(warehouse.query, sql, scope.params(trace_id=trace_id))
    return [row["CorrelationId"] for row in rows]


def _search_sql(scope: QueryScope, flt: TraceFilter) -> tuple[str, dict[str, Any]]:
    where = time_filter() + scope.tenant_filter()
    params: dict[str, Any] = {"start_ns": flt.time.start_ns, "end_ns": flt.time.end_ns}
    if flt.service is not None:
        where += " AND ServiceName = {service:String}"
        params["service"] = flt.service
    if flt.operation is not None:
        where += " AND SpanName = {operation:String}"
        params["operation"] = flt.operation
    if flt.status is not None:
        where += " AND StatusCode IN ({status_a:String}, {status_b:String})"
        params["status_a"], params["status_b"] = STATUS_CODES[flt.status]
    if flt.min_duration_ns is not None:
        where += " AND Duration >= {min_duration_ns:UInt64}"
        params["min_duration_ns"] = flt.min_duration_ns
    if flt.max_duration_ns is not None:
        where += " AND Duration <= {max_duration_ns:UInt64}"
        params["max_duration_ns"] = flt.max_duration_ns
    attributes, attribute_params = conditions_filter(flt.conditions, "SpanAttributes")
    where += attributes
    params.update(attribute_params)
    sql = (
        f"SELECT TraceId, min(Timestamp) AS first FROM {scope.table(TRACES_TABLE)} FINAL "
        f"WHERE TraceId != ''{where} GROUP BY TraceId ORDER BY first DESC, TraceId "
        f"LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}{ATTRIBUTE_SEARCH_SETTINGS if flt.conditions else ''}"
    )
    return sql, scope.params(**params)


def _summary_sql(scope: QueryScope) -> str:
    root = "ParentSpanId = ''"
    return (
        f"SELECT LookupKey AS TraceId, toUnixTimestamp64Nano(min(Timestamp)) AS start_ns, "
        f"max(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)) AS end_ns, count() AS spans, "
        f"countIf({ERROR_STATUS}) AS errors, arraySort(groupUniqArray(toString(ServiceName))) AS services, "
        f"if(countIf({root}) > 0, argMinIf(toString(ServiceName), Timestamp, {root}), "
        f"argMin(toString(ServiceName), Timestamp)) AS root_service, "
        f"if(countIf({root}) > 0, argMinIf(toString(SpanName), Timestamp, {root}), "
        f"argMin(toString(SpanName), Timestamp)) AS root_operation, "
        f"argMinIf(CorrelationId, Timestamp, CorrelationId != '') AS own_correlation_id "
        f"FROM {scope.trace_rows(f'LookupKey IN {TRACE_ID_SET}', str(SPAN_KIND))} GROUP BY LookupKey"
    )


async def search_traces(warehouse: Warehouse, scope: QueryScope, flt: TraceFilter, page: Page) -> list[Row]:
    """Summaries of traces with a span matching ``flt``, newest first; one page plus one row
    (so the caller can tell whether a next page exists)."""
    sql, params = _search_sql(scope, flt)
    params.update(limit=page.limit + 1, offset=page.offset)
    found = await asyncio.to_thread(warehouse.query, sql, params)
    if not found:
        return []
    order = [row["TraceId"] for row in found]
    summaries = await asyncio.to_thread(
        warehouse.query, _summary_sql(scope), scope.params(trace_ids=trace_id_list(order)))
    by_id = {row["TraceId"]: row for row in summaries}
    return [by_id[trace_id] for trace_id in order if trace_id in by_id]
