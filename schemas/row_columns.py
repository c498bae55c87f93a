"""The columns span, log and exemplar rows are read as (timestamps as Unix nanoseconds): by the
queries, and by the views that keep the lookup copy (0012) in the same shape."""
from __future__ import annotations

SPAN_COLUMNS = (
    "toUnixTimestamp64Nano(Timestamp) AS ts_ns, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, "
    "ServiceName, Duration, StatusCode, StatusMessage, SpanAttributes, ResourceAttributes, "
    "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS event_ts_ns, "
    "Events.Name AS event_names, Events.Attributes AS event_attributes, CorrelationId"
)
LOG_COLUMNS = (
    "toUnixTimestamp64Nano(Timestamp) AS ts_ns, TraceId, SpanId, SeverityText, SeverityNumber, "
    "ServiceName, Body, LogAttributes, ResourceAttributes, CorrelationId"
)
EXEMPLAR_COLUMNS = (
    "toUnixTimestamp64Nano(Timestamp) AS ts_ns, MetricName, MetricType, ServiceName, Value, "
    "TraceId, SpanId, CorrelationId, FilteredAttributes, Attributes"
)


def row_json(columns: str) -> str:
    """An expression of one row as the JSON object the API returns (``columns`` one of the
    lists above); its 64-bit integers are numbers only under
    ``output_format_json_quote_64bit_integers = 0``."""
    return f"formatRowNoNewline('JSONEachRow', {columns})"

