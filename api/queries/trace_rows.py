"""One trace's spans, logs and exemplars in one statement, as a CorrelationRows (for request
analysis by trace ID: the correlation lookup would also bring the ID's other traces)."""
from __future__ import annotations

import asyncio

import orjson

from api.params import Limits
from api.queries.columns import EXEMPLAR_COLUMNS, LOG_COLUMNS, SPAN_COLUMNS
from api.queries.correlation import CorrelationRows, best_links
from api.queries.scope import BY_TRACE_SETTINGS, TENANT_COLUMN, QueryScope
from api.queries.traces import trace_own_ids
from core.types import Row
from schemas.tables import EXEMPLARS_TABLE, LOGS_TABLE
from sinks.warehouse import Warehouse

SPANS, LOGS, EXEMPLARS = 1, 2, 3


def _sql(scope: QueryScope) -> str:
    selects = [
        f"SELECT {SPANS} AS kind, toUnixTimestamp64Nano(Timestamp) AS at_ns, SpanId AS tie, "
        f"formatRowNoNewline('JSONEachRow', {SPAN_COLUMNS}) AS row "
        f"FROM {scope.trace_spans('TraceId = {trace_id:String}')} "
        f"ORDER BY Timestamp, SpanId LIMIT {{max_spans:UInt32}}",
        f"SELECT {LOGS} AS kind, toUnixTimestamp64Nano(Timestamp) AS at_ns, SpanId AS tie, "
        f"formatRowNoNewline('JSONEachRow', {LOG_COLUMNS}) AS row FROM {scope.table(LOGS_TABLE)} FINAL "
        f"WHERE TraceId = {{trace_id:String}}{scope.tenant_filter()} ORDER BY Timestamp LIMIT {{max_logs:UInt32}}",
        f"SELECT {EXEMPLARS} AS kind, toUnixTimestamp64Nano(Timestamp) AS at_ns, SpanId AS tie, "
        f"formatRowNoNewline('JSONEachRow', {EXEMPLAR_COLUMNS}) AS row FROM {scope.table(EXEMPLARS_TABLE)} FINAL "
        f"WHERE TraceId = {{trace_id:String}}{scope.tenant_filter(TENANT_COLUMN)} "
        f"ORDER BY Timestamp LIMIT {{max_exemplars:UInt32}}",
    ]
    return (f"SELECT kind, row FROM ({' UNION ALL '.join(f'({s})' for s in selects)}) "
            f"ORDER BY kind, at_ns, tie {BY_TRACE_SETTINGS}, output_format_json_quote_64bit_integers = 0")


async def load_trace(warehouse: Warehouse, scope: QueryScope, trace_id: str, limits: Limits) -> CorrelationRows:
    """The spans, logs and exemplars of ``trace_id`` visible in ``scope``, under the trace's
    best correlation ID (its best link, else the first ID stored on its rows, else '');
    capped like a correlation lookup (``truncated`` when a cap was reached). Raises
    WarehouseError (or WarehouseUnavailableError) from the warehouse."""
    links = await best_links(warehouse, scope, [trace_id])
    correlation_id = links.get(trace_id) or next(iter(await trace_own_ids(warehouse, scope, trace_id)), "")
    params = scope.params(trace_id=trace_id, max_spans=limits.max_lookup_spans + 1,
                          max_logs=limits.max_lookup_logs + 1, max_exemplars=limits.max_lookup_exemplars + 1)
    found: dict[int, list[Row]] = {SPANS: [], LOGS: [], EXEMPLARS: []}
    for row in await asyncio.to_thread(warehouse.query, _sql(scope), params):
        found[int(row["kind"])].append(orjson.loads(row["row"]))
    spans, logs, exemplars = found[SPANS], found[LOGS], found[EXEMPLARS]
    return CorrelationRows(
        correlation_id=correlation_id, trace_ids=[trace_id] if spans or logs or exemplars else [],
        spans=spans[: limits.max_lookup_spans], logs=logs[: limits.max_lookup_logs],
        exemplars=exemplars[: limits.max_lookup_exemplars],
        truncated=len(spans) > limits.max_lookup_spans or len(logs) > limits.max_lookup_logs
        or len(exemplars) > limits.max_lookup_exemplars)
