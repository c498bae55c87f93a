"""The lookup copy, ``ollystack_trace_rows`` (0012): every span, log and exemplar as the JSON
row the API returns, keyed by the trace it belongs to, so that a correlation lookup or a trace
read is one read of a few small granules of one table.

Rows found by a correlation ID rather than by a trace (a log without a trace, an exemplar
stored under the ID) are also keyed ``cid:<ID>``; an exemplar with both a trace and an ID is
stored under both keys, and readers take each row once by (Kind, SpanId, RowKey).

RowKey hashes the rest of the source table's replacing key (with the trace ID, so rows of
different traces never share one): a replayed or retried row collapses here as it does there."""
from __future__ import annotations

from schemas.row_columns import EXEMPLAR_COLUMNS, LOG_COLUMNS, SPAN_COLUMNS, row_json
from schemas.span_predicates import TENANT_OF_RESOURCE
from schemas.tables import EXEMPLARS_TABLE, LOGS_TABLE, TRACES_TABLE

SPAN_KIND, LOG_KIND, EXEMPLAR_KIND = 1, 2, 3
ID_KEY_PREFIX = "cid:"
# 64-bit integers (timestamps, durations) as JSON numbers, whatever the server's default.
_JSON_NUMBERS = "SETTINGS output_format_json_quote_64bit_integers = 0"
# Every SELECT gives every column in the table's order, so the backfill needs no column list.
_NOT_A_SPAN = "'' AS ParentSpanId, ServiceName, '' AS SpanName, toUInt64(0) AS Duration, '' AS StatusCode"


def id_key(correlation_id: str) -> str:
    """The LookupKey of rows stored under ``correlation_id`` itself."""
    return ID_KEY_PREFIX + correlation_id


def placeholders(database: str) -> dict[str, str]:
    """The DDL's $placeholders for 0012: the SELECT that turns each source table's rows into
    lookup rows, used by its view and by the backfill. A view keeps the SELECT it was created
    with: a change to the row columns needs a migration that recreates the views."""
    id_key_sql = f"concat('{ID_KEY_PREFIX}', CorrelationId)"
    return {
        "spans_as_trace_rows": (
            f"SELECT TraceId AS LookupKey, toUInt8({SPAN_KIND}) AS Kind, Timestamp, SpanId, "
            f"cityHash64(TraceId, ServiceName, SpanName, toDateTime(Timestamp)) AS RowKey, "
            f"{TENANT_OF_RESOURCE} AS Tenant, CorrelationId, ParentSpanId, ServiceName, SpanName, Duration, "
            f"StatusCode, {row_json(SPAN_COLUMNS)} AS Row "
            f"FROM {database}.{TRACES_TABLE} WHERE TraceId != '' {_JSON_NUMBERS}"),
        "logs_as_trace_rows": (
            f"SELECT if(TraceId != '', TraceId, {id_key_sql}) AS LookupKey, toUInt8({LOG_KIND}) AS Kind, "
            f"Timestamp, SpanId, "
            f"cityHash64(TraceId, ServiceName, Timestamp, SeverityNumber, Body, LogAttributes, ResourceAttributes) "
            f"AS RowKey, {TENANT_OF_RESOURCE} AS Tenant, CorrelationId, {_NOT_A_SPAN}, {row_json(LOG_COLUMNS)} AS Row "
            f"FROM {database}.{LOGS_TABLE} WHERE TraceId != '' OR CorrelationId != '' {_JSON_NUMBERS}"),
        "exemplars_as_trace_rows": (
            f"SELECT arrayJoin(arrayFilter(k -> k NOT IN ('', '{ID_KEY_PREFIX}'), [TraceId, {id_key_sql}])) "
            f"AS LookupKey, toUInt8({EXEMPLAR_KIND}) AS Kind, Timestamp, SpanId, "
            f"cityHash64(TraceId, MetricName, ServiceName, Timestamp) AS RowKey, Tenant, CorrelationId, "
            f"{_NOT_A_SPAN}, {row_json(EXEMPLAR_COLUMNS)} AS Row "
            f"FROM {database}.{EXEMPLARS_TABLE} WHERE TraceId != '' OR CorrelationId != '' {_JSON_NUMBERS}"),
    }

