"""Anomalies, alerts, per-service series and health: the queries, and their rows as API JSON."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from api.params import Page, TimeRange
from api.queries.rows import Row, iso_ns, ms
from api.queries.scope import ERROR_STATUS, QueryScope, time_filter
from schemas.alerts import ALERTS_TABLE, ANOMALIES_TABLE
from sinks.warehouse import Warehouse

_Z = {"latency_p50": "ZLatencyP50", "latency_p95": "ZLatencyP95", "error_rate": "ZErrorRate",
      "throughput": "ZThroughput"}
_BASELINE = {"latency_p50_ms": "BaselineP50Ms", "latency_p95_ms": "BaselineP95Ms",
             "error_rate": "BaselineErrorRate", "spans": "BaselineSpans"}
# The latest message of an alert (one incident of one fingerprint): a resolved one wins a tie.
_LATEST = "(UpdatedAt, Status = 'resolved')"


def tenant_filter(scope: QueryScope) -> str:
    """``AND Tenant = …`` for the score stage's tables (their tenant is a column)."""
    return "" if scope.tenant is None else " AND Tenant = {tenant:String}"


@dataclass(frozen=True)
class AnomalyFilter:
    time: TimeRange
    service: str | None = None
    operation: str | None = None
    min_score: float = 0.0


async def anomaly_rows(warehouse: Warehouse, scope: QueryScope, f: AnomalyFilter, page: Page) -> list[Row]:
    """Scored windows in ``f.time``, newest first (highest score first within a window)."""
    where = f"Score >= {{min_score:Float64}}{time_filter()}{tenant_filter(scope)}"
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


def anomaly_json(row: Row, api_url: str) -> Row:
    cid = row["ExemplarCorrelationId"]
    return {
        "timestamp": iso_ns(row["ts_ns"]), "window_s": int(row["WindowSeconds"]), "service": row["ServiceName"],
        "operation": row["SpanName"] or None, "tenant": row["Tenant"] or None, "score": row["Score"],
        "reason": row["Reason"] or None, "detail": row["Detail"] or None, "spans": int(row["Spans"]),
        "errors": int(row["Errors"]), "error_rate": row["ErrorRate"], "p50_ms": row["P50Ms"], "p95_ms": row["P95Ms"],
        "z": {name: row[column] for name, column in _Z.items()},
        "baseline": {name: row[column] for name, column in _BASELINE.items()},
        "learned": bool(row["Learned"]), "warming": bool(row["Warming"]),
        # Service-wide rows: the services it called, and the anomalous ones that explain
        # this window (it then did not count towards an alert of its own).
        "callees": list(row.get("Callees") or []), "explained_by": list(row.get("AlertInhibitedBy") or []),
        "exemplar": {"correlation_id": cid or None, "trace_id": row["ExemplarTraceId"] or None,
                     "lookup_url": f"{api_url}/api/v1/correlate/{cid}" if cid else None},
    }


@dataclass(frozen=True)
class AlertFilter:
    time: TimeRange | None = None  # on startsAt
    status: str | None = None  # firing | resolved
    service: str | None = None
    predicted: bool | None = None


def _alert_where(scope: QueryScope, f: AlertFilter) -> str:
    where = f"1 = 1{tenant_filter(scope)}"
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
    where = f"InsertedAt >= fromUnixTimestamp64Milli({{since_ms:Int64}}){tenant_filter(scope)}"
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


def alert_json(row: Row) -> Row:
    """A stored alert as published on the topic."""
    found: Row = orjson.loads(row["payload"])
    return found


async def service_buckets(warehouse: Warehouse, scope: QueryScope, time: TimeRange, step_s: int,
                          service: str | None, operation: str | None = None, limit: int = 1000) -> list[Row]:
    """Per service and time bucket of ``step_s`` seconds from stored spans: spans, errors,
    p50/p95 duration (ns), and the correlation IDs of the slowest and of a failed span."""
    where = f"1 = 1{time_filter()}{scope.tenant_filter()}"
    if service is not None:
        where += " AND ServiceName = {service:String}"
    if operation is not None:
        where += " AND SpanName = {operation:String}"
    sql = (f"SELECT toString(ServiceName) AS service, "
           f"intDiv(toUnixTimestamp64Nano(Timestamp), {{step_ns:Int64}}) * {{step_ns:Int64}} AS bucket_ns, "
           f"count() AS spans, countIf({ERROR_STATUS}) AS errors, quantile(0.5)(Duration) AS p50_ns, "
           f"quantile(0.95)(Duration) AS p95_ns, argMax(CorrelationId, Duration) AS slow_cid, "
           f"argMax(TraceId, Duration) AS slow_trace, anyIf(CorrelationId, {ERROR_STATUS}) AS error_cid, "
           f"anyIf(TraceId, {ERROR_STATUS}) AS error_trace "
           f"FROM {scope.table('otel_traces')} FINAL WHERE {where} "
           f"GROUP BY service, bucket_ns ORDER BY service, bucket_ns LIMIT {{limit:UInt32}}")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, step_ns=step_s * 1_000_000_000,
                          service=service, operation=operation, limit=limit)
    return await asyncio.to_thread(warehouse.query, sql, {k: v for k, v in params.items() if v is not None})


async def service_health_rows(warehouse: Warehouse, scope: QueryScope, time: TimeRange, limit: int) -> list[Row]:
    """Per service over ``time``: windows scored, spans, errors, the latest window's score
    and p95, the highest score, and its alerts still firing (with the worst severity)."""
    anomalies = scope.table(ANOMALIES_TABLE)
    alerts = scope.table(ALERTS_TABLE)
    tenant = tenant_filter(scope)
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


def health_json(row: Row, threshold: float) -> Row:
    firing, critical = int(row["firing"] or 0), int(row["critical"] or 0)
    windows = int(row["windows"] or 0)
    latest = row["latest_score"]
    if critical:
        status = "critical"
    elif firing or (latest is not None and latest >= threshold):
        status = "degraded"
    elif windows:
        status = "healthy"
    else:
        status = "unknown"
    spans, errors = int(row["spans"] or 0), int(row["errors"] or 0)
    return {
        "service": row["service"], "status": status, "firing_alerts": firing, "windows": windows,
        "latest_window": iso_ns(row["latest_ns"]) if row["latest_ns"] else None, "latest_score": latest,
        "max_score": row["max_score"], "latest_p95_ms": row["latest_p95_ms"], "spans": spans, "errors": errors,
        "error_rate": round(errors / spans, 6) if spans else None,
    }


def bucket_value(row: Row, metric: str, step_s: int) -> float:
    """A bucket row's value of ``metric`` (latency in ms, error rate, spans per minute)."""
    spans = int(row["spans"])
    if metric == "error_rate":
        return int(row["errors"]) / spans if spans else 0.0
    if metric == "throughput":
        return spans * 60.0 / step_s
    key = "p50_ns" if metric == "latency_p50_ms" else "p95_ns"
    return ms(row[key] or 0)


def trend_json(points: list[tuple[int, float]], flat_change: float = 0.1) -> Row:
    """Least-squares slope per hour, change from the first to the last third, and a direction."""
    n = len(points)
    if n < 2:
        return {"slope_per_hour": None, "change_ratio": None, "direction": "unknown"}
    xs = [t / 3.6e12 for t, _ in points]  # hours
    ys = [v for _, v in points]
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
    third = max(1, n // 3)
    first, last = sum(ys[:third]) / third, sum(ys[-third:]) / third
    change = (last - first) / first if first else (None if last else 0.0)
    if change is None:
        direction = "rising"
    elif abs(change) < flat_change:
        direction = "flat"
    else:
        direction = "rising" if change > 0 else "falling"
    return {"slope_per_hour": round(slope, 6), "change_ratio": None if change is None else round(change, 4),
            "direction": direction}


def build_insights(alerts: Iterable[Row], top: Iterable[Row], trends: Iterable[Row], limit: int) -> list[Row]:
    """Findings worth a look, most important first: firing alerts (critical first), alerts
    resolved in the range, then for services without an alert: the worst anomalous window,
    and p95 latency or error rate rising by half or more."""
    out: list[tuple[tuple[int, float], Row]] = []
    alerted = set()
    for alert in alerts:
        labels, notes = alert["labels"], alert["annotations"]
        alerted.add(labels.get("service"))
        firing = alert["status"] == "firing"
        rank = (0 if labels.get("severity") == "critical" else 1) if firing else 2
        out.append(((rank, -float(notes.get("score", "0") or 0)), {
            "kind": ("predicted_breach" if labels.get("predicted") == "true" else "firing_alert") if firing
            else "resolved_alert",
            "severity": labels.get("severity", "warning") if firing else "info", "service": labels.get("service"),
            "operation": labels.get("operation"), "title": notes.get("summary", ""),
            "detail": notes.get("description", ""), "since": alert["startsAt"],
            "until": None if firing else alert["endsAt"],
            "links": {"alert": alert["generatorURL"], "correlation": notes.get("correlation_url")},
            "fingerprint": alert["fingerprint"]}))
    worst: dict[str, Row] = {}
    for row in top:
        if row["service"] not in alerted and row["score"] > worst.get(row["service"], {"score": -1.0})["score"]:
            worst[row["service"]] = row
    for row in worst.values():
        out.append(((3, -row["score"]), {
            "kind": "anomalous_window", "severity": "info", "service": row["service"],
            "operation": row["operation"], "title": f"{row['service']}: score {row['score']:.2f} without an alert",
            "detail": row["detail"] or "", "since": row["timestamp"], "until": None,
            "links": {"correlation": row["exemplar"]["lookup_url"]}}))
    for trend in trends:
        change = trend["change_ratio"]
        if trend["direction"] != "rising" or change is None or change < 0.5 or trend["service"] in alerted:
            continue
        out.append(((4, -change), {
            "kind": "rising_trend", "severity": "info", "service": trend["service"], "operation": None,
            "title": f"{trend['service']}: {trend['metric']} up {change * 100:.0f} % over the range",
            "detail": f"slope {trend['slope_per_hour']} per hour", "since": None, "until": None, "links": {}}))
    out.sort(key=lambda item: item[0])
    return [item[1] for item in out[:limit]]
