"""Log search by correlation ID, trace ID, service, severity, attributes, body words or text, and time range."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from api.conditions import Condition
from api.params import Page, TimeRange
from api.queries.attributes import conditions_filter
from api.queries.scope import TRACE_ID_SET, QueryScope, time_filter, trace_id_list
from core.types import Row
from schemas.row_columns import LOG_COLUMNS
from schemas.tables import LOGS_TABLE
from sinks.warehouse import Warehouse

# severity parameter -> the lowest SeverityNumber of that level, and the SeverityText
# spellings of it and every more severe level (for records sent with a text but no number)
SEVERITIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "trace": (1, ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL")),
    "debug": (5, ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL")),
    "info": (9, ("INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL")),
    "warn": (13, ("WARN", "WARNING", "ERROR", "FATAL", "CRITICAL")),
    "error": (17, ("ERROR", "FATAL", "CRITICAL")),
    "fatal": (21, ("FATAL", "CRITICAL")),
}


# Word and attribute filters may skip granules under FINAL without widening to whole key
# ranges: a log's sort key ends in a hash of its body and attributes, so the versions of a
# record have the same body and attributes and match alike.
INDEXED_SEARCH_SETTINGS = " SETTINGS use_skip_indexes_if_final_exact_mode = 0"


@dataclass(frozen=True)
class LogFilter:
    time: TimeRange | None = None
    trace_ids: tuple[str, ...] | None = None  # the traces of a correlation ID, or one trace
    correlation_id: str | None = None  # also matches trace-less logs stored under it
    service: str | None = None
    severity: str | None = None  # a key of SEVERITIES: this level or more severe
    text: str | None = None  # case-insensitive substring of Body
    tokens: tuple[str, ...] = ()  # whole words of Body (lowercase, see api.params.body_tokens)
    conditions: tuple[Condition, ...] = ()  # on LogAttributes / ResourceAttributes
    order: Literal["asc", "desc"] = "desc"


def _where(scope: QueryScope, flt: LogFilter) -> tuple[str, dict[str, Any]]:
    where = "1 = 1" + scope.tenant_filter()
    params: dict[str, Any] = {}
    if flt.time is not None:
        where += time_filter()
        params.update(start_ns=flt.time.start_ns, end_ns=flt.time.end_ns)
    if flt.trace_ids is not None and flt.correlation_id is not None:
        where += f" AND (TraceId IN {TRACE_ID_SET} OR (TraceId = '' AND CorrelationId = {{cid:String}}))"
        params.update(trace_ids=trace_id_list(flt.trace_ids), cid=flt.correlation_id)
    elif flt.trace_ids is not None:
        where += f" AND TraceId IN {TRACE_ID_SET}"
        params["trace_ids"] = trace_id_list(flt.trace_ids)
    if flt.service is not None:
        where += " AND ServiceName = {service:String}"
        params["service"] = flt.service
    if flt.severity is not None:
        number, texts = SEVERITIES[flt.severity]
        names = ", ".join(f"{{sev_{i}:String}}" for i in range(len(texts)))
        where += (f" AND (SeverityNumber >= {{sev_number:UInt8}} "
                  f"OR (SeverityNumber = 0 AND upper(SeverityText) IN ({names})))")
        params["sev_number"] = number
        params.update({f"sev_{i}": text for i, text in enumerate(texts)})
    if flt.text is not None:
        where += " AND positionCaseInsensitiveUTF8(Body, {text:String}) > 0"
        params["text"] = flt.text
    for i, token in enumerate(flt.tokens):
        # The form the tokenbf_v1 index on lower(Body) serves (schemas/migrations/0002).
        where += f" AND hasToken(lower(Body), {{token_{i}:String}})"
        params[f"token_{i}"] = token
    attributes, attribute_params = conditions_filter(flt.conditions, "LogAttributes")
    return where + attributes, params | attribute_params


async def search_logs(warehouse: Warehouse, scope: QueryScope, flt: LogFilter, page: Page) -> list[Row]:
    """Log records matching ``flt`` in time order (``flt.order``); one page plus one row."""
    where, params = _where(scope, flt)
    direction = "DESC" if flt.order == "desc" else "ASC"
    sql = (
        f"SELECT {LOG_COLUMNS} FROM {scope.table(LOGS_TABLE)} FINAL WHERE {where} "
        f"ORDER BY Timestamp {direction}, TraceId, SpanId LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}"
        f"{INDEXED_SEARCH_SETTINGS if flt.tokens or flt.conditions else ''}"
    )
    params.update(limit=page.limit + 1, offset=page.offset)
    return await asyncio.to_thread(warehouse.query, sql, scope.params(**params))
