"""Causal chains: the counterfactual figures and the events (spans, error logs) of a window."""
from __future__ import annotations

import asyncio

from api.params import TimeRange
from api.queries.incident import spans_sql
from api.queries.scope import QueryScope, time_filter
from core.types import Row
from schemas.span_predicates import TENANT_OF_RESOURCE
from schemas.tables import LOGS_TABLE
from sinks.warehouse import Warehouse

ERROR_SEVERITY = 17  # OTel SeverityNumber ERROR and above


async def counterfactual_row(warehouse: Warehouse, scope: QueryScope, time: TimeRange, symptom: str, cause: str,
                             cause_base_self_ns: int) -> Row:
    """Per trace with a request of ``symptom``: did it fail, did an error start in ``cause``,
    and its latency with ``cause``'s self time above ``cause_base_self_ns`` a request taken
    out; summed: requests, failed, failed with a cause error, mean and p95 with and without."""
    per_trace = (f"SELECT TraceId, maxIf(Duration, service = {{symptom:String}} AND entry) AS sym_ns, "
                 f"maxIf(failed, service = {{symptom:String}} AND entry) AS sym_failed, "
                 f"maxIf(failed AND NOT failed_child, service = {{cause:String}}) AS cause_failed, "
                 f"sumIf(self_ns, service = {{cause:String}}) AS cause_self_ns, "
                 f"countIf(service = {{cause:String}} AND entry) AS cause_requests "
                 f"FROM {spans_sql(scope)} GROUP BY TraceId HAVING countIf(service = {{symptom:String}} AND entry) > 0")
    without = "greatest(0, toInt64(sym_ns) - greatest(0, toInt64(cause_self_ns) - cause_requests * {base:Int64}))"
    sql = (f"SELECT count() AS requests, countIf(sym_failed) AS failed, countIf(sym_failed AND cause_failed) "
           f"AS failed_with_cause, countIf(cause_failed) AS with_cause, avg(sym_ns) / 1e6 AS mean_ms, "
           f"quantile(0.95)(sym_ns) / 1e6 AS p95_ms, avg({without}) / 1e6 AS mean_without_ms, "
           f"quantile(0.95)({without}) / 1e6 AS p95_without_ms FROM ({per_trace}) SETTINGS join_use_nulls = 0")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, symptom=symptom, cause=cause,
                          base=cause_base_self_ns)
    rows = await asyncio.to_thread(warehouse.query, sql, params)
    return rows[0]


async def event_span_rows(warehouse: Warehouse, scope: QueryScope, time: TimeRange, per_service: int) -> list[Row]:
    """Per service, its first failing spans in ``time`` and its spans with the most self time."""
    fields = ("toUnixTimestamp64Nano(Timestamp) AS ts_ns, service, operation, TraceId AS trace_id, "
              "SpanId AS span_id, failed, failed_child, Duration / 1e6 AS duration_ms, self_ns / 1e6 AS self_ms, "
              "StatusMessage AS message")
    sql = (f"SELECT * FROM (SELECT {fields} FROM {spans_sql(scope)} WHERE failed ORDER BY Timestamp "
           f"LIMIT {{n:UInt32}} BY service) UNION ALL SELECT * FROM (SELECT {fields} FROM {spans_sql(scope)} "
           f"WHERE NOT failed ORDER BY self_ns DESC LIMIT {{n:UInt32}} BY service) SETTINGS join_use_nulls = 0")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, n=per_service)
    return await asyncio.to_thread(warehouse.query, sql, params)


async def error_log_rows(warehouse: Warehouse, scope: QueryScope, time: TimeRange, per_service: int) -> list[Row]:
    """Per service, its first logs of severity ERROR or worse in ``time``."""
    sql = (f"SELECT toUnixTimestamp64Nano(Timestamp) AS ts_ns, toString(ServiceName) AS service, "
           f"TraceId AS trace_id, SpanId AS span_id, SeverityText AS severity, substring(Body, 1, 300) AS body "
           f"FROM {scope.table(LOGS_TABLE)} WHERE SeverityNumber >= {ERROR_SEVERITY}{time_filter()}"
           f"{scope.tenant_filter(TENANT_OF_RESOURCE)} ORDER BY Timestamp LIMIT {{n:UInt32}} BY ServiceName")
    params = scope.params(start_ns=time.start_ns, end_ns=time.end_ns, n=per_service)
    return await asyncio.to_thread(warehouse.query, sql, params)
