"""Anomaly windows, alerts, per-service series and health: the queries."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from api.params import Page, TimeRange
from api.queries.rollups import rollup_rows
from api.queries.scope import ERROR_STATUS, TENANT_COLUMN, QueryScope, time_filter
from core.types import Row
from schemas.tables import ALERTS_TABLE, ANOMALIES_TABLE, SERVICE_ROLLUP_TABLE
from sinks.warehouse import Warehouse

# The latest message of an alert (one incident of one fingerprint): a resolved one wins a tie.
_LATEST = "(UpdatedAt, Status = 'resolved')"


@dataclass(frozen=True)
class AnomalyFilter:
    time: TimeRange
    service: str | None = None
    operation: str | None = None
    min_score: float = 0.0


async def anomaly_rows(warehouse: Warehouse, scope: QueryScope, f: AnomalyFilter, page: Page) -> list[Row]:
    """Scored windows in ``f.time``, newest first (highest score first within a window)."""
    where = f"Score >= {{min_score:Float64}}{time_filter()}{scope.tenant_filter(TENANT_COLUMN)}"
    if f.service is not None:
        where += " AND ServiceName = {service:String}"
    if f.operation is not None:
        where += " AND SpanName = {operation:String}"
    sql = (f"SELECT *, toUnixTimestamp64Nano(Timestamp) AS ts_ns FROM {scope.table(ANOMALIES_TABLE)} FINAL "
           f"WHERE {where} ORDER BY Timestamp DESC, Score DESC, ServiceName, SpanName "
           f"LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}")
    params = scope.params(min_score=f.min_score, start_ns=f.time.start_ns, end_ns=f.time.end_ns,
                          service=f.service, operation=f.operation, limit=page.limit, offset=page.offset)
    return await asyncio.to_thread(warehouse.query, sql, {k: v for k, v in params.items() if v is not None})


@dataclass(frozen=True)
class AlertFilter:
    time: TimeRange | None = None  # on startsAt
    status: str | None = None  # firing | resolved
    service: str | None = None
    predicted: bool | None = None


def _alert_where(scope: QueryScope, f: AlertFilter) -> str:
    where = f"1 = 1{scope.tenant_filter(TENANT_COLUMN)}"
    if f.time is not None:
        where += time_filter("StartsAt")
    if f.service is not None:
        where += " AND ServiceName = {service:String}"
    if f.predicted is not None:
        where += " AND Predicted = {predicted:UInt8}"
    return where


async def alert_rows(warehouse: Warehouse, scope: QueryScope, f: AlertFilter, page: Page) -> list[Row]:
    """The latest message of each alert matching ``f``, most recently changed first."""
    having = " HAVING status = {status:String}" if f.status is not None else ""
    sql = (f"SELECT argMax(Payload, {_LATEST}) AS payload, argMax(Status, {_LATEST}) AS status, "
           f"max(UpdatedAt) AS updated FROM {scope.table(ALERTS_TABLE)} FINAL WHERE {_alert_where(scope, f)} "
           f"GROUP BY Fingerprint, StartsAt{having} ORDER BY updated DESC, Fingerprint "
           f"LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}")
    params = scope.params(status=f.status, service=f.service, limit=page.limit, offset=page.offset,
                          predicted=None if f.predicted is None else int(f.predicted))
    if f.time is not None:
        params.update(start_ns=f.time.start_ns, end_ns=f.time.end_ns)
    return await asyncio.to_thread(warehouse.query, sql, {k: v for k, v in params.items() if v is not None})


async def alerts_inserted_since(warehouse: Warehouse, scope: QueryScope, since_ms: int, service: str | None,
                                limit: int) -> list[Row]:
    """Alert messages stored at or after ``since_ms`` (the table's insert time), oldest first."""
    where = f"InsertedAt >= fromUnixTimestamp64Milli({{since_ms:Int64}}){scope.tenant_filter(TENANT_COLUMN)}"
    if service is not None:
        where += " AND ServiceName = {service:String}"
    sql = (f"SELECT Payload AS payload, Fingerprint, Status, toUnixTimestamp64Nano(StartsAt) AS starts_ns, "
           f"toUnixTimestamp64Milli(InsertedAt) AS inserted_ms FROM {scope.table(ALERTS_TABLE)} "
           f"WHERE {where} ORDER BY InsertedAt, Fingerprint, Status LIMIT {{limit:UInt32}}")
    params = scope.params(since_ms=since_ms, service=service, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, {k: v for k, v in params.items() if v is not None})


async def warehouse_now_ms(warehouse: Warehouse) -> int:
    rows = await asyncio.to_thread(warehouse.query, "SELECT toUnixTimestamp64Milli(now64(3)) AS now_ms")
    return int(rows[0]["now_ms"])


async def service_buckets(warehouse: Warehouse, scope: QueryScope, time: TimeRange, step_s: int,
                          service: str | None, operation: str | None = None, limit: int = 1000) -> list[Row]:
    """Per service and bucket of ``step_s`` seconds (a whole number of minutes) from the
    per-minute rollups: spans, errors, p50/p95 duration (ns), and the correlation and trace
    IDs of the slowest span and of the slowest failed span."""
    if step_s <= 0 or step_s % 60:
        raise ValueError(f"step_s must be a positive multiple of 60, not {step_s}")
    where = ""
    if service is not None:
        where += " AND ServiceName = {service:String}"
    if operation is not None:
        where += " AND SpanName = {operation:String}"
    sql = (f"SELECT toString(ServiceName) AS service, "
           f"intDiv(toUnixTimestamp(Minute), {{step_s:UInt32}}) * {{step_s:UInt32}} * 1000000000 AS bucket_ns, "
           f"sum(Spans) AS spans, sumIf(Spans, {ERROR_STATUS}) AS errors, "
           f"quantilesBFloat16Merge(0.5, 0.95)(DurationNs) AS quantiles_ns, "
           f"quantiles_ns[1] AS p50_ns, quantiles_ns[2] AS p95_ns, "
           f"argMax(SlowCorrelationId, MaxDurationNs) AS slow_cid, argMax(SlowTraceId, MaxDurationNs) AS slow_trace, "
           f"argMaxIf(SlowCorrelationId, MaxDurationNs, {ERROR_STATUS}) AS error_cid, "
           f"argMaxIf(SlowTraceId, MaxDurationNs, {ERROR_STATUS}) AS error_trace "
           f"FROM {rollup_rows(scope, SERVICE_ROLLUP_TABLE, where, hours=False)} "
           f"GROUP BY service, bucket_ns ORDER BY service, bucket_ns LIMIT {{limit:UInt32}}")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, step_s=step_s,
                          service=service, operation=operation, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, {k: v for k, v in params.items() if v is not None})


async def service_health_rows(warehouse: Warehouse, scope: QueryScope, time: TimeRange, limit: int) -> list[Row]:
    """Per service over ``time``: windows scored, spans, errors, the latest window's score
    and p95, the highest score, and its alerts still firing (with the worst severity)."""
    anomalies = scope.table(ANOMALIES_TABLE)
    alerts = scope.table(ALERTS_TABLE)
    tenant = scope.tenant_filter(TENANT_COLUMN)
    sql = (
        f"SELECT service, windows, spans, errors, latest_ns, latest_score, latest_p95_ms, max_score, "
        f"firing, critical FROM ("
        f"SELECT toString(ServiceName) AS service, count() AS windows, sum(Spans) AS spans, sum(Errors) AS errors, "
        f"toUnixTimestamp64Nano(max(Timestamp)) AS latest_ns, argMax(Score, Timestamp) AS latest_score, "
        f"argMax(P95Ms, Timestamp) AS latest_p95_ms, max(Score) AS max_score "
        f"FROM {anomalies} FINAL WHERE SpanName = ''{time_filter()}{tenant} GROUP BY service) AS a "
        f"FULL OUTER JOIN (SELECT service, count() AS firing, countIf(severity = 'critical') AS critical FROM ("
        f"SELECT toString(any(ServiceName)) AS service, argMax(Status, {_LATEST}) AS status, "
        f"any(Severity) AS severity FROM {alerts} FINAL WHERE Predicted = 0{tenant} "
        f"GROUP BY Fingerprint, StartsAt) WHERE status = 'firing' GROUP BY service) AS f USING service "
        f"ORDER BY firing DESC, max_score DESC, service LIMIT {{limit:UInt32}} "
        f"SETTINGS join_use_nulls = 1"
    )
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, params)


