"""Incident analysis: the anomaly windows, per-service trace figures and calls of a time window."""
from __future__ import annotations

import asyncio

from api.params import TimeRange
from api.queries.scope import ERROR_STATUS, TENANT_COLUMN, QueryScope, time_filter
from core.types import Row
from schemas.span_predicates import ENTRY_SPAN, TENANT_OF_RESOURCE
from schemas.tables import ALERTS_TABLE, ANOMALIES_TABLE, TRACES_TABLE
from sinks.warehouse import Warehouse

MAX_ANOMALY_ROWS = 5000


def spans_sql(scope: QueryScope) -> str:
    """The window's spans, each once (a retried block collapses), with their self time.

    Self time is the span's duration less its children's (the demo and most RPC code call
    children one after another; overlapping children make it an under-estimate, never
    negative). ``failed_child``: a child span failed too, so this span's error came from
    below. Children are looked for in the same window: a call crossing the window's edge
    loses its children, which only blurs one span at each end."""
    spans = (f"(SELECT Timestamp, TraceId, SpanId, ParentSpanId, toString(ServiceName) AS service, "
             f"toString(SpanName) AS operation, Duration, {ERROR_STATUS} AS failed, {ENTRY_SPAN} AS entry, "
             f"StatusMessage FROM {scope.table(TRACES_TABLE)} WHERE 1 = 1{time_filter()}"
             f"{scope.tenant_filter(TENANT_OF_RESOURCE)} LIMIT 1 BY TraceId, SpanId)")
    kids = (f"(SELECT TraceId, ParentSpanId AS parent, sum(Duration) AS child_ns, max(failed) AS child_failed "
            f"FROM {spans} WHERE ParentSpanId != '' GROUP BY TraceId, ParentSpanId)")
    return (f"(SELECT s.*, greatest(0, toInt64(s.Duration) - toInt64(k.child_ns)) AS self_ns, "
            f"k.child_failed AS failed_child FROM {spans} AS s LEFT JOIN {kids} AS k "
            f"ON k.TraceId = s.TraceId AND k.parent = s.SpanId)")


async def service_traffic_rows(warehouse: Warehouse, scope: QueryScope, time: TimeRange) -> list[Row]:
    """Per (service, operation) in ``time``: requests (entry spans), failed requests, origin
    errors (failing spans no child of which failed), self time, first error and examples."""
    origin = "failed AND NOT failed_child"
    sql = (f"SELECT service, operation, countIf(entry) AS requests, countIf(entry AND failed) AS failed_requests, "
           f"countIf({origin}) AS origin_errors, sum(self_ns) AS total_self_ns, count() AS spans, "
           f"toUnixTimestamp64Nano(minIf(Timestamp, failed)) AS first_error_ns, countIf(failed) AS errors, "
           f"argMaxIf(TraceId, Timestamp, {origin}) AS error_trace_id, "
           f"argMaxIf(SpanId, Timestamp, {origin}) AS error_span_id, "
           f"argMaxIf(StatusMessage, Timestamp, {origin}) AS error_message, "
           f"argMax(TraceId, self_ns) AS slow_trace_id, argMax(SpanId, self_ns) AS slow_span_id, "
           f"max(self_ns) AS max_self_ns "
           f"FROM {spans_sql(scope)} GROUP BY service, operation ORDER BY service, operation "
           f"SETTINGS join_use_nulls = 0")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns)
    return await asyncio.to_thread(warehouse.query, sql, params)


async def call_rows(warehouse: Warehouse, scope: QueryScope, time: TimeRange) -> list[Row]:
    """Calls between services in ``time`` (a child span in another service than its parent's):
    caller, callee, calls, failed calls, the first failed call and an example failed span."""
    spans = spans_sql(scope)
    sql = (f"SELECT p.service AS caller, c.service AS callee, count() AS calls, countIf(c.failed) AS errors, "
           f"toUnixTimestamp64Nano(minIf(c.Timestamp, c.failed)) AS first_error_ns, "
           f"argMaxIf(c.TraceId, c.Timestamp, c.failed) AS error_trace_id, "
           f"argMaxIf(c.SpanId, c.Timestamp, c.failed) AS error_span_id "
           f"FROM {spans} AS c INNER JOIN {spans} AS p ON p.TraceId = c.TraceId AND p.SpanId = c.ParentSpanId "
           f"WHERE p.service != c.service GROUP BY caller, callee ORDER BY caller, callee "
           f"SETTINGS join_use_nulls = 0")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns)
    return await asyncio.to_thread(warehouse.query, sql, params)


async def service_window_rows(warehouse: Warehouse, scope: QueryScope, time: TimeRange) -> list[Row]:
    """The service-wide anomaly rows of windows that start in ``time``, oldest first."""
    sql = (f"SELECT toString(ServiceName) AS service, toUnixTimestamp64Nano(Timestamp) AS start_ns, "
           f"WindowSeconds AS window_s, Score AS score, toString(Reason) AS reason, Detail AS detail, "
           f"AlertScore AS alert_score, toString(AlertReason) AS alert_reason, AlertOperation AS operation, "
           f"AlertDetail AS alert_detail, arrayMap(x -> toString(x), AlertInhibitedBy) AS inhibited_by, "
           f"arrayMap(x -> toString(x), Callees) AS callees, ExemplarTraceId AS trace_id, Warming AS warming "
           f"FROM {scope.table(ANOMALIES_TABLE)} FINAL WHERE SpanName = ''{time_filter()}"
           f"{scope.tenant_filter(TENANT_COLUMN)} ORDER BY Timestamp, ServiceName LIMIT {MAX_ANOMALY_ROWS}")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns)
    return await asyncio.to_thread(warehouse.query, sql, params)


async def alert_row(warehouse: Warehouse, scope: QueryScope, fingerprint: str) -> Row | None:
    """The latest incident of the alert ``fingerprint``: its service, start, end (0 while
    firing) and the event time of its latest message; None when the scope has no such alert."""
    sql = (f"SELECT toString(ServiceName) AS service, toUnixTimestamp64Nano(StartsAt) AS starts_ns, "
           f"toUnixTimestamp64Nano(max(EndsAt)) AS ends_ns, toUnixTimestamp64Nano(max(UpdatedAt)) AS updated_ns, "
           f"argMax(toString(Status), UpdatedAt) AS status "
           f"FROM {scope.table(ALERTS_TABLE)} FINAL WHERE Fingerprint = {{fingerprint:String}}"
           f"{scope.tenant_filter(TENANT_COLUMN)} GROUP BY service, StartsAt ORDER BY StartsAt DESC LIMIT 1")
    rows = await asyncio.to_thread(warehouse.query, sql, scope.params(fingerprint=fingerprint))
    return rows[0] if rows else None
