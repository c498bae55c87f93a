"""Correlation lookups resolved at query time: correlation ID -> traces -> every span, log, exemplar.

A trace's ID can be upgraded after some of its spans were stored (children first under a
generated ``olly-`` ID, the root later under the external one), so rows are never selected
by their stored CorrelationId alone: the ID names traces, through the trace links (read by
ID from ``ollystack_correlation_traces``) and the correlation index (fed by views from the
rows' own CorrelationId), and the rows of those traces are returned whatever ID they were
stored with.

Spans are read from their trace-sorted copy (``ollystack_trace_spans``, 0011): in otel_traces
the Collector's sort key scatters a trace's spans over as many granules as it has spans.

Reads are not narrowed by the traces' time ranges from ``otel_traces_trace_id_ts``: measured
at 10M spans (benchmarks/correlation_lookup.py) that made a lookup about 60 ms slower (p50
234 -> 294 ms), because the TraceId bloom filter already finds the same granules (time is
third in the Collector's span sort key, so ranges prune no granule the filter keeps) and
reading trace_id_ts costs a statement's worth of work more.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

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
    CORRELATION_TRACES_TABLE,
    EXEMPLARS_TABLE,
    LOGS_TABLE,
    TRACE_LINKS_TABLE,
)
from sinks.warehouse import Warehouse

# The kinds of row in the one statement that reads them all.
SPANS, LOGS, EXEMPLARS = 1, 2, 3


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


def _traces_sql(scope: QueryScope) -> str:
    # Both sources are sorted by CorrelationId: the traces linked to the ID, and the traces
    # of rows stored under it (the index).
    return (
        f"SELECT DISTINCT TraceId FROM ("
        f"SELECT TraceId FROM {scope.table(CORRELATION_TRACES_TABLE)} WHERE CorrelationId = {{cid:String}}"
        f"{scope.tenant_filter(TENANT_COLUMN)} "
        f"UNION ALL SELECT arrayJoin(TraceIds) AS TraceId FROM {scope.table(CORRELATION_INDEX_TABLE)} "
        f"WHERE CorrelationId = {{cid:String}}{scope.tenant_filter(TENANT_COLUMN)}) "
        f"WHERE TraceId != '' ORDER BY TraceId LIMIT {{max_traces:UInt32}}"
    )


def _row_selects(scope: QueryScope) -> list[str]:
    """The SELECTs of spans, logs and exemplars: each row as (kind, time, tie-break, the row
    as a JSON object)."""
    # Logs without a trace can only be found by their own ID; exemplars stored under the ID
    # too (their trace's spans may have been sampled away), each exemplar belonging to the
    # tenant of its own resource. Skipping granules by index under FINAL is safe: versions of
    # one record share TraceId (sort key) and, being replays of one record, its CorrelationId.
    return [
        f"SELECT {SPANS} AS kind, toUnixTimestamp64Nano(Timestamp) AS at_ns, SpanId AS tie, "
        f"formatRowNoNewline('JSONEachRow', {SPAN_COLUMNS}) AS row "
        f"FROM {scope.trace_spans(f'TraceId IN {TRACE_ID_SET}')} ORDER BY Timestamp, SpanId LIMIT {{max_spans:UInt32}}",
        f"SELECT {LOGS} AS kind, toUnixTimestamp64Nano(Timestamp) AS at_ns, SpanId AS tie, "
        f"formatRowNoNewline('JSONEachRow', {LOG_COLUMNS}) AS row FROM {scope.table(LOGS_TABLE)} FINAL "
        f"WHERE (TraceId IN {TRACE_ID_SET} OR (TraceId = '' AND CorrelationId = {{cid:String}}))"
        f"{scope.tenant_filter()} ORDER BY Timestamp LIMIT {{max_logs:UInt32}}",
        f"SELECT {EXEMPLARS} AS kind, toUnixTimestamp64Nano(Timestamp) AS at_ns, SpanId AS tie, "
        f"formatRowNoNewline('JSONEachRow', {EXEMPLAR_COLUMNS}) AS row FROM {scope.table(EXEMPLARS_TABLE)} FINAL "
        f"WHERE (TraceId IN {TRACE_ID_SET} OR CorrelationId = {{cid:String}}){scope.tenant_filter(TENANT_COLUMN)} "
        f"ORDER BY Timestamp LIMIT {{max_exemplars:UInt32}}",
    ]


def _rows_sql(selects: list[str], limits: Limits) -> str:
    # One statement for all three: a round trip costs several ms on chDB. Lazy
    # materialization reads the wide columns (attributes, events) of the rows that are
    # returned only, after sorting, instead of those of every row in the granules read; its
    # default cap (10000 rows) is below a lookup's limits (measured about 15 % off the span
    # read at 10M spans).
    lazy_rows = int(max(limits.max_lookup_spans, limits.max_lookup_logs, limits.max_lookup_exemplars)) + 1
    return (f"SELECT kind, row FROM ({' UNION ALL '.join(f'({s})' for s in selects)}) "
            f"ORDER BY kind, at_ns, tie {BY_TRACE_SETTINGS}, output_format_json_quote_64bit_integers = 0, "
            f"query_plan_max_limit_for_lazy_materialization = {lazy_rows}")


async def _query(warehouse: Warehouse, sql: str, params: dict[str, Any]) -> list[Row]:
    return await asyncio.to_thread(warehouse.query, sql, params)


async def resolve_traces(warehouse: Warehouse, scope: QueryScope, cid: str, max_traces: int) -> list[str]:
    """Trace IDs linked to ``cid`` or holding rows stored under it (at most ``max_traces``)."""
    rows = await _query(warehouse, _traces_sql(scope), scope.params(cid=cid, max_traces=max_traces))
    return [row["TraceId"] for row in rows]


async def load_correlation(warehouse: Warehouse, scope: QueryScope, cid: str, limits: Limits) -> CorrelationRows:
    """Every span, log and exemplar of the traces of ``cid`` visible in ``scope``.

    Lists are capped by ``limits``; ``truncated`` says a cap was reached. Raises
    WarehouseError (or WarehouseUnavailableError) from the warehouse."""
    traces = await resolve_traces(warehouse, scope, cid, limits.max_lookup_traces + 1)
    truncated = len(traces) > limits.max_lookup_traces
    traces = traces[: limits.max_lookup_traces]
    params = scope.params(cid=cid, trace_ids=trace_id_list(traces), max_spans=limits.max_lookup_spans + 1,
                          max_logs=limits.max_lookup_logs + 1, max_exemplars=limits.max_lookup_exemplars + 1)
    found: dict[int, list[Row]] = {SPANS: [], LOGS: [], EXEMPLARS: []}
    for row in await _query(warehouse, _rows_sql(_row_selects(scope), limits), params):
        found[int(row["kind"])].append(orjson.loads(row["row"]))
    spans, logs, exemplars = found[SPANS], found[LOGS], found[EXEMPLARS]
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
