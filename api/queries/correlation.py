"""Correlation lookups resolved at query time: correlation ID -> traces -> every span, log, exemplar.

A trace's ID can be upgraded after some of its spans were stored (children first under a
generated ``olly-`` ID, the root later under the external one), so rows are never selected
by their stored CorrelationId alone: the ID names traces (``ollystack_correlation_traces``,
sorted by ID, fed from the trace links and from the rows' own CorrelationId), and the rows of
those traces are returned whatever ID they were stored with.

Rows are read from the lookup copy (``ollystack_trace_rows``, 0012): spans, logs and exemplars
as ready JSON rows keyed by trace, so a lookup is two reads sorted by their keys: the ID's
traces, then their rows. Logs without a trace and exemplars stored under the ID are keyed by
the ID itself, and read in the same statement.

Reads are not narrowed by the traces' time ranges from ``otel_traces_trace_id_ts``: measured
at 10M spans, bounding the day-partitioned span copy this way saved 12 ms of a 49 ms read
but cost 15 ms to read the bounds; the lookup copy is not partitioned by time at all.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from api.params import Limits
from api.queries.scope import TENANT_COLUMN, TRACE_ID_SET, QueryScope, trace_id_list
from core.types import Row
from schemas.tables import CORRELATION_TRACES_TABLE, TRACE_LINKS_TABLE
from schemas.trace_rows import EXEMPLAR_KIND, LOG_KIND, SPAN_KIND, id_key
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


def _traces_sql(scope: QueryScope) -> str:
    # Sorted by CorrelationId, fed from the trace links and from the rows stored under an ID
    # (0009, 0012).
    return (
        f"SELECT DISTINCT TraceId FROM {scope.table(CORRELATION_TRACES_TABLE)} "
        f"WHERE CorrelationId = {{cid:String}} AND TraceId != ''{scope.tenant_filter(TENANT_COLUMN)} "
        f"ORDER BY TraceId LIMIT {{max_traces:UInt32}}"
    )


# The traces' rows, and those keyed by the ID itself, as one set: the ID travels as a
# parameter of its own (it may hold ','). An OR of the two conditions cost the read about
# 5 ms of its 25 at 10M spans.
_KEYS = ("LookupKey IN (SELECT arrayJoin(arrayConcat(splitByChar(',', {trace_ids:String}), [{id_key:String}])) "
         "AS k WHERE k != '')")


def _rows_sql(scope: QueryScope) -> str:
    return (f"SELECT Kind AS kind, Row AS row "
            f"FROM {scope.trace_rows(_KEYS, f'{SPAN_KIND}, {LOG_KIND}, {EXEMPLAR_KIND}')} "
            f"ORDER BY Kind, Timestamp, SpanId LIMIT {{per_kind:UInt32}} BY Kind")


async def read_rows(warehouse: Warehouse, scope: QueryScope, trace_ids: list[str], correlation_id: str | None,
                    limits: Limits) -> dict[int, list[Row]]:
    """Kind -> the lookup rows of ``trace_ids`` and of those stored under ``correlation_id``
    itself (logs without a trace, exemplars), each list in time order and at most one past
    its cap in ``limits``. Raises WarehouseError."""
    per_kind = max(limits.max_lookup_spans, limits.max_lookup_logs, limits.max_lookup_exemplars) + 1
    found: dict[int, list[Row]] = {SPAN_KIND: [], LOG_KIND: [], EXEMPLAR_KIND: []}
    params = scope.params(trace_ids=trace_id_list(trace_ids), per_kind=per_kind,
                          id_key="" if correlation_id is None else id_key(correlation_id))
    for row in await _query(warehouse, _rows_sql(scope), params):
        found[int(row["kind"])].append(orjson.loads(row["row"]))
    return found


def capped(correlation_id: str, trace_ids: list[str], found: dict[int, list[Row]], limits: Limits,
           truncated: bool = False) -> CorrelationRows:
    """``found`` (from read_rows) cut to the caps in ``limits``; ``truncated`` says a cap was
    reached (or was already)."""
    spans, logs, exemplars = found[SPAN_KIND], found[LOG_KIND], found[EXEMPLAR_KIND]
    truncated = truncated or len(spans) > limits.max_lookup_spans or len(logs) > limits.max_lookup_logs \
        or len(exemplars) > limits.max_lookup_exemplars
    return CorrelationRows(
        correlation_id=correlation_id,
        trace_ids=trace_ids,
        spans=spans[: limits.max_lookup_spans],
        logs=logs[: limits.max_lookup_logs],
        exemplars=exemplars[: limits.max_lookup_exemplars],
        truncated=truncated,
    )


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
    found = await read_rows(warehouse, scope, traces, cid, limits)
    return capped(cid, traces, found, limits, truncated)


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
