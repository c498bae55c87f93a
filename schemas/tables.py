"""The names of every ClickHouse table OllyStack writes or reads (schemas/migrations/*.sql)."""
from __future__ import annotations

# The OpenTelemetry Collector ClickHouse exporter's tables, under its names.
TRACES_TABLE = "otel_traces"
TRACE_ID_TS_TABLE = "otel_traces_trace_id_ts"
LOGS_TABLE = "otel_logs"
# Table per Metric.data oneof field.
METRIC_TABLE_BY_KIND: dict[str, str] = {
    "gauge": "otel_metrics_gauge",
    "sum": "otel_metrics_sum",
    "histogram": "otel_metrics_histogram",
    "exponential_histogram": "otel_metrics_exp_histogram",
    "summary": "otel_metrics_summary",
}
METRIC_TABLES: tuple[str, ...] = tuple(METRIC_TABLE_BY_KIND.values())

# OllyStack's own.
EXEMPLARS_TABLE = "metric_exemplars"
TRACE_LINKS_TABLE = "ollystack_trace_links"
CORRELATION_INDEX_TABLE = "ollystack_correlation_index"
# Correlation ID -> traces, sorted by the ID (fed from the trace links).
CORRELATION_TRACES_TABLE = "ollystack_correlation_traces"
# Spans, logs and exemplars as ready rows keyed by trace (0012, fed by views; schemas/trace_rows.py):
# correlation lookups and every read of whole traces.
TRACE_ROWS_TABLE = "ollystack_trace_rows"
# Per-minute rollups of otel_traces (0010), kept up to date by sinks/rollups.py.
SERVICE_ROLLUP_TABLE = "ollystack_service_rollup"
SERVICE_EDGES_TABLE = "ollystack_service_edges"
# The same rows per hour (0013), re-merged from the minutes: windows of hours read 60 times
# fewer sketches.
SERVICE_ROLLUP_HOURLY_TABLE = "ollystack_service_rollup_hourly"
SERVICE_EDGES_HOURLY_TABLE = "ollystack_service_edges_hourly"
HOURLY_ROLLUP_OF: dict[str, str] = {
    SERVICE_ROLLUP_TABLE: SERVICE_ROLLUP_HOURLY_TABLE,
    SERVICE_EDGES_TABLE: SERVICE_EDGES_HOURLY_TABLE,
}
ROLLUP_DIRTY_TABLE = "ollystack_rollup_dirty"
ROLLUP_MINUTES_TABLE = "ollystack_rollup_minutes"
ANOMALIES_TABLE = "ollystack_anomalies"
ALERTS_TABLE = "ollystack_alerts"
MIGRATIONS_TABLE = "ollystack_schema_migrations"
