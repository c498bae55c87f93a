"""The tables and columns model-written SQL may read, and where each table keeps a row's tenant."""
from __future__ import annotations

from dataclasses import dataclass

from schemas import tables as t
from schemas.span_predicates import TENANT_OF_RESOURCE

RESOURCE = "ResourceAttributes"
COLUMN_TENANT = "Tenant"
_METRIC_COMMON = (
    "ResourceAttributes", "ResourceSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
    "ScopeDroppedAttrCount", "ScopeSchemaUrl", "ServiceName", "MetricName", "MetricDescription", "MetricUnit",
    "Attributes", "StartTimeUnix", "TimeUnix", "Flags",
    "Exemplars.FilteredAttributes", "Exemplars.TimeUnix", "Exemplars.Value", "Exemplars.SpanId", "Exemplars.TraceId",
)


@dataclass(frozen=True)
class AllowedTable:
    """A table the guard lets a query read: its columns, where its rows keep their tenant,
    and a line for the model's prompt."""

    name: str
    columns: tuple[str, ...]
    tenant: str  # an SQL expression over the table's own columns
    about: str


# Only the tables users ask about. Left out: the migration log, rollup bookkeeping, trace-ID
# time ranges (no tenant), and trace links (internal). Columns holding aggregate-function
# states are left out too: their values mean nothing outside their merge functions.
ALLOWED_TABLES: dict[str, AllowedTable] = {a.name: a for a in (
    AllowedTable(t.TRACES_TABLE, (
        "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind", "ServiceName",
        "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration", "StatusCode",
        "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId", "Links.SpanId",
        "Links.TraceState", "Links.Attributes", "CorrelationId"), TENANT_OF_RESOURCE,
        "spans; Duration in nanoseconds; StatusCode 'Error' marks a failed span; SpanKind 'Server', 'Client', ..."),
    AllowedTable(t.LOGS_TABLE, (
        "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber", "ServiceName", "Body",
        "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
        "LogAttributes", "EventName", "CorrelationId"), TENANT_OF_RESOURCE,
        "log records; SeverityNumber >= 17 is an error"),
    AllowedTable(t.METRIC_TABLE_BY_KIND["gauge"], (*_METRIC_COMMON, "Value"), TENANT_OF_RESOURCE, "gauge points"),
    AllowedTable(t.METRIC_TABLE_BY_KIND["sum"], (*_METRIC_COMMON, "Value", "AggregationTemporality", "IsMonotonic"),
                 TENANT_OF_RESOURCE, "sum (counter) points"),
    AllowedTable(t.METRIC_TABLE_BY_KIND["histogram"], (
        *_METRIC_COMMON, "Count", "Sum", "BucketCounts", "ExplicitBounds", "Min", "Max", "AggregationTemporality"),
        TENANT_OF_RESOURCE, "histogram points"),
    AllowedTable(t.EXEMPLARS_TABLE, (
        "Timestamp", "MetricName", "MetricType", "ServiceName", "Value", "TraceId", "SpanId", "CorrelationId",
        "FilteredAttributes", "Attributes", "Tenant"), COLUMN_TENANT, "metric exemplars linking points to traces"),
    AllowedTable(t.ANOMALIES_TABLE, (
        "Timestamp", "WindowSeconds", "Tenant", "ServiceName", "SpanName", "Spans", "Errors", "ErrorRate", "P50Ms",
        "P95Ms", "Score", "Reason", "Detail", "ZLatencyP50", "ZLatencyP95", "ZErrorRate", "ZThroughput",
        "BaselineP50Ms", "BaselineP95Ms", "BaselineErrorRate", "BaselineSpans", "Learned", "Warming",
        "ExemplarCorrelationId", "ExemplarTraceId", "AlertScore", "AlertOperation", "AlertReason",
        "AlertCorrelationId", "AlertTraceId", "AlertDetail", "AlertInhibitedBy", "Callees", "ScoredAt"),
        COLUMN_TENANT, "scored windows per service and operation; Score is -log10 of the tail probability, "
        "anomalous from the threshold (6 by default); Learned = 2 with Reason 'level_shift' marks a new level"),
    AllowedTable(t.ALERTS_TABLE, (
        "Fingerprint", "StartsAt", "Status", "AlertName", "Tenant", "ServiceName", "Operation", "Severity",
        "Predicted", "CorrelationId", "Score", "EndsAt", "UpdatedAt", "Labels", "Annotations", "GeneratorURL"),
        COLUMN_TENANT, "alert messages; Status 'firing' or 'resolved'"),
    AllowedTable(t.SERVICE_ROLLUP_TABLE, (
        "Tenant", "Minute", "ServiceName", "SpanName", "SpanKind", "StatusCode", "Entry", "Spans", "MaxDurationNs",
        "SlowCorrelationId", "SlowTraceId"), COLUMN_TENANT, "spans per minute, service and operation"),
    AllowedTable(t.SERVICE_EDGES_TABLE, (
        "Tenant", "Minute", "Caller", "Callee", "CalleeKind", "Operation", "Calls", "Errors"),
        COLUMN_TENANT, "calls per minute between services"),
)}
# The groups of Nested columns: "Events.Name" reads like a column Name of a table Events.
NESTED_GROUPS = frozenset(c.split(".", 1)[0] for a in ALLOWED_TABLES.values() for c in a.columns if "." in c)


def schema_text() -> str:
    """The allowlisted schema as the model's prompt shows it: one line per table."""
    return "\n".join(f"- {a.name} ({', '.join(a.columns)}): {a.about}" for a in ALLOWED_TABLES.values())
