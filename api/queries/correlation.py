"""Correlation lookups resolved at query time: correlation ID -> traces -> every span, log, exemplar.

A trace's ID can be upgraded after some of its spans were stored (children first under a
generated ``olly-`` ID, the root later under the external one), so rows are never selected
by their stored CorrelationId alone: the ID names traces, through ``ollystack_trace_links``
and the correlation index (fed by views from the rows' own CorrelationId), and the rows of
those traces are returned whatever ID they were stored with.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from api.params import Limits
from api.queries.columns import EXEMPLAR_COLUMNS, LOG_COLUMNS, SPAN_COLUMNS
from api.queries.scope import (
    BY_TRACE_SETTINGS,
    TENANT_COLUMN,
    TRACE_ID_SET,
    QueryScope,
    trace_id_list,
)
from core.types import Row
from schemas.tables import (
    CORRELATION_INDEX_TABLE,
    EXEMPLARS_TABLE,
    LOGS_TABLE,
    TRACE_LINKS_TABLE,
    TRACES_TABLE,
)
from sinks.warehouse import Warehouse


@dataclass(frozen=True)
class CorrelationRows:
    """Everything stored under one correlation ID, each list in time order."""

    correlation_id: str
    trace_ids: list[str]
    spans: list[Row] = field(default_factory=list)
    logs: list[Row] = field(default_factory=list)
    exemplars: list[Row] = field(default_factory=list)
    truncated: bool = False

    @property
    def empty(self) -> bool:
        return not (self.spans or self.logs or self.exemplars)

    @property
    def size_rows(self) -> int:
        return len(self.spans) + len(self.logs) + len(self.exemplars)


def _resolve_sql(scope: QueryScope) -> str:
    return (
        f"SELECT DISTINCT TraceId FROM ("
        f"SELECT TraceId FROM {scope.table(TRACE_LINKS_TABLE)} WHERE CorrelationId = {{cid:String}}"
        f"{scope.tenant_filter(TENANT_COLUMN)} "
        f"UNION ALL SELECT arrayJoin(TraceIds) AS TraceId FROM {scope.table(CORRELATION_INDEX_TABLE)} "
        f"WHERE CorrelationId = {{cid:String}}{scope.tenant_filter(TENANT_COLUMN)}) "
        f"WHERE TraceId != '' ORDER BY TraceId LIMIT {{max_traces:UInt32}}"
    )


def _spans_sql(scope: QueryScope) -> str:
    return (
        f"SELECT {SPAN_COLUMNS} FROM {scope.table(TRACES_TABLE)} FINAL "
        f"PREWHERE TraceId IN {TRACE_ID_SET} WHERE 1 = 1{scope.tenant_filter()} "
        f"ORDER BY Timestamp, SpanId LIMIT {{max_rows:UInt32}} {BY_TRACE_SETTINGS}"
    )


def _logs_sql(scope: QueryScope) -> str:
    # Logs without a trace can only be found by their own ID. Skipping granules by index
    # under FINAL is safe here as for spans: versions of one record share TraceId (sort key)
    # and, being replays of one record, its CorrelationId. Measured 2x faster at 200k logs.
    return (
        f"SELECT {LOG_COLUMNS} FROM {scope.table(LOGS_TABLE)} FINAL "
        f"WHERE (TraceId IN {TRACE_ID_SET} OR (TraceId = '' AND CorrelationId = {{cid:String}}))"
        f"{scope.tenant_filter()} ORDER BY Timestamp LIMIT {{max_rows:UInt32}} {BY_TRACE_SETTINGS}"
    )


def _exemplars_sql(scope: QueryScope) -> str:
    # Exemplars of the traces, and those stored under the ID (their trace's spans may have
    # been sampled away); each exemplar belongs to the tenant of its own resource.
    return (
        f"SELECT {EXEMPLAR_COLUMNS} FROM {scope.table(EXEMPLARS_TABLE)} FINAL "
        f"WHERE (TraceId IN {TRACE_ID_SET} OR CorrelationId = {{cid:String}}){scope.tenant_filter(TENANT_COLUMN)} "
        f"ORDER BY Timestamp LIMIT {{max_rows:UInt32}}"
    )


async def _query(warehouse: Warehouse, sql: str, params: dict[str, Any]) -> list[Row]:
    return await asyncio.to_thread(warehouse.query, sql, params)


async def resolve_traces(warehouse: Warehouse, scope: QueryScope, cid: str, max_traces: int) -> list[str]:
    """Trace IDs linked to ``cid`` or holding rows stored under it (at most ``max_traces``)."""
    rows = await _query(warehouse, _resolve_sql(scope), scope.params(cid=cid, max_traces=max_traces))
    return [row["TraceId"] for row in rows]


async def load_correlation(warehouse: Warehouse, scope: QueryScope, cid: str, limits: Limits) -> CorrelationRows:
    """Every span, log and exemplar of the traces of ``cid`` visible in ``scope``.

    Lists are capped by ``limits``; ``truncated`` says a cap was reached. Raises
    WarehouseError (or WarehouseUnavailableError) from the warehouse."""
    traces = await resolve_traces(warehouse, scope, cid, limits.max_lookup_traces + 1)
    truncated = len(traces) > limits.max_lookup_traces
    traces = traces[: limits.max_lookup_traces]
    ids = trace_id_list(traces)
    # One after another: the API's warehouse runs one statement at a time anyway.
    spans: list[Row] = []
    if traces:
        spans = await _query(warehouse, _spans_sql(scope),
                             scope.params(trace_ids=ids, max_rows=limits.max_lookup_spans + 1))
    logs = await _query(warehouse, _logs_sql(scope),
                        scope.params(trace_ids=ids, cid=cid, max_rows=limits.max_lookup_logs + 1))
    exemplars = await _query(warehouse, _exemplars_sql(scope),
                             scope.params(trace_ids=ids, cid=cid, max_rows=limits.max_lookup_exemplars + 1))
    truncated = truncated or len(spans) > limits.max_lookup_spans or len(logs) > limits.max_lookup_logs \
        or len(exemplars) > limits.max_lookup_exemplars
    return CorrelationRows(
        correlation_id=cid,
        trace_ids=traces,
        spans=spans[: limits.max_lookup_spans],
        logs=logs[: limits.max_lookup_logs],
        exemplars=exemplars[: limits.max_lookup_exemplars],
        truncated=truncated,
    )


async def best_links(warehouse: Warehouse, scope: QueryScope, trace_ids: list[str]) -> dict[str, str]:
    """Each trace's best correlation ID: lowest Priority, then earliest FirstSeen."""
    if not trace_ids:
        return {}
    sql = (
        f"SELECT TraceId, argMin(CorrelationId, (Priority, FirstSeen)) AS cid "
        f"FROM {scope.table(TRACE_LINKS_TABLE)} WHERE TraceId IN {TRACE_ID_SET}{scope.tenant_filter(TENANT_COLUMN)} "
        f"GROUP BY TraceId"
    )
    rows = await _query(warehouse, sql, scope.params(trace_ids=trace_id_list(sorted(set(trace_ids)))))
    return {row["TraceId"]: row["cid"] for row in rows}
