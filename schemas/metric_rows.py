"""Metric data points of an OTLP export request as rows of the five metrics tables and of ``metric_exemplars``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from core.tenancy import tenant_of
from core.types import Row
from schemas.otlp_values import attributes_to_map
from schemas.tables import METRIC_TABLE_BY_KIND, METRIC_TABLES

__all__ = [
    "EXEMPLAR_COLUMNS",
    "decode_metric_exemplars",
    "decode_metrics",
    "exemplar_rows",
]

Tables = dict[str, list[Row]]

# metric_exemplars.MetricType per table; summaries carry no exemplars.
_EXEMPLAR_TYPES: dict[str, str] = {
    METRIC_TABLE_BY_KIND["gauge"]: "gauge",
    METRIC_TABLE_BY_KIND["sum"]: "sum",
    METRIC_TABLE_BY_KIND["histogram"]: "histogram",
    METRIC_TABLE_BY_KIND["exponential_histogram"]: "exp_histogram",
}
EXEMPLAR_COLUMNS: tuple[str, ...] = (
    "Timestamp", "MetricName", "MetricType", "ServiceName", "Value", "TraceId", "SpanId",
    "CorrelationId", "FilteredAttributes", "Attributes", "Tenant",
)  # fmt: skip


def decode_metrics(request: ExportMetricsServiceRequest) -> Tables:
    """Rows per metrics table for a parsed request: one row per data point, in request order.

    Always returns all five tables of METRIC_TABLES (empty lists included), each row keyed
    by every insertable column in DDL order (schemas/migrations/0003_otel_metrics.sql).
    Int and double values both become float ``Value``; absent optional Sum/Min/Max are 0.0
    as in the Collector; Exemplars are flattened into the ``Exemplars.*`` arrays. A metric
    with no data field set is skipped. Rows of one scope share their ResourceAttributes and
    ScopeAttributes dicts: copy before mutating. Pure; never raises.
    """
    tables: Tables = {table: [] for table in METRIC_TABLES}
    for resource_metrics in request.resource_metrics:
        resource_map = attributes_to_map(resource_metrics.resource.attributes)
        resource_schema_url = resource_metrics.schema_url
        service_name = resource_map.get("service.name", "")
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scope_columns = {
                "ResourceAttributes": resource_map,
                "ResourceSchemaUrl": resource_schema_url,
                "ScopeName": scope.name,
                "ScopeVersion": scope.version,
                "ScopeAttributes": attributes_to_map(scope.attributes),
                "ScopeDroppedAttrCount": scope.dropped_attributes_count,
                "ScopeSchemaUrl": scope_metrics.schema_url,
                "ServiceName": service_name,
            }
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                prefix = {
                    **scope_columns,
                    "MetricName": metric.name,
                    "MetricDescription": metric.description,
                    "MetricUnit": metric.unit,
                }
                _POINT_ROWS[kind](metric, prefix, tables[METRIC_TABLE_BY_KIND[kind]])
    return tables


def _number_rows(metric: Metric, prefix: Row, out: list[Row]) -> None:
    is_sum = metric.HasField("sum")
    data = metric.sum if is_sum else metric.gauge
    for point in data.data_points:
        # Only one of the oneof pair is set and the other reads 0, so no WhichOneof needed.
        value = point.as_double or float(point.as_int)
        row = {
            **prefix,
            "Attributes": attributes_to_map(point.attributes),
            "StartTimeUnix": point.start_time_unix_nano,
            "TimeUnix": point.time_unix_nano,
            "Value": value,
            "Flags": point.flags,
            **_exemplar_columns(point.exemplars),
        }
        if is_sum:
            row["AggregationTemporality"] = metric.sum.aggregation_temporality
            row["IsMonotonic"] = metric.sum.is_monotonic
        out.append(row)


def _histogram_rows(metric: Metric, prefix: Row, out: list[Row]) -> None:
    data = metric.histogram
    temporality = data.aggregation_temporality
    for point in data.data_points:
        out.append({
            **prefix,
            "Attributes": attributes_to_map(point.attributes),
            "StartTimeUnix": point.start_time_unix_nano,
            "TimeUnix": point.time_unix_nano,
            "Count": point.count,
            "Sum": point.sum,
            "BucketCounts": list(point.bucket_counts),
            "ExplicitBounds": list(point.explicit_bounds),
            **_exemplar_columns(point.exemplars),
            "Flags": point.flags,
            "Min": point.min,
            "Max": point.max,
            "AggregationTemporality": temporality,
        })  # fmt: skip


def _exp_histogram_rows(metric: Metric, prefix: Row, out: list[Row]) -> None:
    data = metric.exponential_histogram
    temporality = data.aggregation_temporality
    for point in data.data_points:
        positive = point.positive
        negative = point.negative
        out.append({
            **prefix,
            "Attributes": attributes_to_map(point.attributes),
            "StartTimeUnix": point.start_time_unix_nano,
            "TimeUnix": point.time_unix_nano,
            "Count": point.count,
            "Sum": point.sum,
            "Scale": point.scale,
            "ZeroCount": point.zero_count,
            "PositiveOffset": positive.offset,
            "PositiveBucketCounts": list(positive.bucket_counts),
            "NegativeOffset": negative.offset,
            "NegativeBucketCounts": list(negative.bucket_counts),
            **_exemplar_columns(point.exemplars),
            "Flags": point.flags,
            "Min": point.min,
            "Max": point.max,
            "AggregationTemporality": temporality,
        })  # fmt: skip


def _summary_rows(metric: Metric, prefix: Row, out: list[Row]) -> None:
    for point in metric.summary.data_points:
        quantiles = point.quantile_values
        out.append({
            **prefix,
            "Attributes": attributes_to_map(point.attributes),
            "StartTimeUnix": point.start_time_unix_nano,
            "TimeUnix": point.time_unix_nano,
            "Count": point.count,
            "Sum": point.sum,
            "ValueAtQuantiles.Quantile": [q.quantile for q in quantiles],
            "ValueAtQuantiles.Value": [q.value for q in quantiles],
            "Flags": point.flags,
        })  # fmt: skip


_POINT_ROWS: dict[str, Callable[[Metric, Row, list[Row]], None]] = {
    "gauge": _number_rows,
    "sum": _number_rows,
    "histogram": _histogram_rows,
    "exponential_histogram": _exp_histogram_rows,
    "summary": _summary_rows,
}


def _exemplar_columns(exemplars: Any) -> Row:
    """The flattened ``Exemplars`` Nested columns of one data point, in DDL order."""
    filtered: list[dict[str, str]] = []
    times: list[int] = []
    values: list[float] = []
    span_ids: list[str] = []
    trace_ids: list[str] = []
    for exemplar in exemplars:
        span_id = exemplar.span_id
        trace_id = exemplar.trace_id
        filtered.append(attributes_to_map(exemplar.filtered_attributes))
        times.append(exemplar.time_unix_nano)
        values.append(exemplar.as_double or float(exemplar.as_int))
        span_ids.append(span_id.hex() if span_id.lstrip(b"\0") else "")
        trace_ids.append(trace_id.hex() if trace_id.lstrip(b"\0") else "")
    return {
        "Exemplars.FilteredAttributes": filtered,
        "Exemplars.TimeUnix": times,
        "Exemplars.Value": values,
        "Exemplars.SpanId": span_ids,
        "Exemplars.TraceId": trace_ids,
    }


def exemplar_rows(tables: Mapping[str, list[Row]]) -> list[Row]:
    """``metric_exemplars`` rows, one per exemplar, from decode_metrics' tables.

    Keys are EXEMPLAR_COLUMNS. Timestamp is the exemplar's time, or the point's TimeUnix
    when the exemplar has none (0 would file it under 1970 and the TTL would drop it).
    ``Attributes`` is the point's attribute dict itself (shared, not copied);
    ``CorrelationId`` is '' until the enrich agent sets it from the trace; ``Tenant`` is the
    resource's tenant.id (schemas/tenancy.py), the tenant whose trace it names. Never raises for
    rows decode_metrics produced.
    """
    out: list[Row] = []
    for table, metric_type in _EXEMPLAR_TYPES.items():
        for row in tables.get(table, ()):
            times = row["Exemplars.TimeUnix"]
            if not times:
                continue
            exemplars = zip(
                times, row["Exemplars.Value"], row["Exemplars.TraceId"],
                row["Exemplars.SpanId"], row["Exemplars.FilteredAttributes"], strict=True,
            )  # fmt: skip
            for time_ns, value, trace_id, span_id, filtered in exemplars:
                out.append({
                    "Timestamp": time_ns or row["TimeUnix"],
                    "MetricName": row["MetricName"],
                    "MetricType": metric_type,
                    "ServiceName": row["ServiceName"],
                    "Value": value,
                    "TraceId": trace_id,
                    "SpanId": span_id,
                    "CorrelationId": "",
                    "FilteredAttributes": filtered,
                    "Attributes": row["Attributes"],
                    "Tenant": tenant_of(row["ResourceAttributes"]),
                })  # fmt: skip
    return out


def decode_metric_exemplars(request: ExportMetricsServiceRequest) -> list[Row]:
    """``metric_exemplars`` rows of a parsed request: ``exemplar_rows(decode_metrics(request))``.

    A caller that already has decode_metrics' tables should call exemplar_rows on them
    instead and skip the second decode.
    """
    return exemplar_rows(decode_metrics(request))
