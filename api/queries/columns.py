"""The columns span, log and exemplar queries select (timestamps as Unix nanoseconds)."""
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
