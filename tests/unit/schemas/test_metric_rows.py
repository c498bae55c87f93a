"""Tests for schemas.metric_rows: data points as metrics-table rows and exemplars as metric_exemplars rows."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
    Exemplar,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from schemas.rows import (
    EXEMPLAR_COLUMNS,
    decode_metric_exemplars,
    decode_metrics,
    exemplar_rows,
)
from schemas.tables import METRIC_TABLES

T0 = 1_700_000_000_000_000_000
T1 = T0 + 60_000_000_000
TRACE_ID = bytes.fromhex("0AF7651916CD43DD8448EB211C80319C")
SPAN_ID = bytes.fromhex("B7AD6B7169203331")


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def exemplar(time_ns: int = T1 - 5, **value: Any) -> Exemplar:
    return Exemplar(filtered_attributes=[kv("user", string_value="u1")], time_unix_nano=time_ns,
                    span_id=SPAN_ID, trace_id=TRACE_ID, **value)  # fmt: skip


def request(*metrics: Metric) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=Resource(attributes=[kv("service.name", string_value="api")]),
        schema_url="https://opentelemetry.io/schemas/1.26.0",
        scope_metrics=[ScopeMetrics(
            scope=InstrumentationScope(name="meter", version="1.0", attributes=[kv("x", bool_value=True)],
                                       dropped_attributes_count=2),
            schema_url="https://opentelemetry.io/schemas/1.24.0",
            metrics=metrics,
        )],
    )])  # fmt: skip


def common(name: str, attrs: dict[str, str], start: int = T0) -> dict[str, Any]:
    """The columns every metrics table shares, for a point of request()'s scope."""
    return {
        "ResourceAttributes": {"service.name": "api"},
        "ResourceSchemaUrl": "https://opentelemetry.io/schemas/1.26.0",
        "ScopeName": "meter",
        "ScopeVersion": "1.0",
        "ScopeAttributes": {"x": "true"},
        "ScopeDroppedAttrCount": 2,
        "ScopeSchemaUrl": "https://opentelemetry.io/schemas/1.24.0",
        "ServiceName": "api",
        "MetricName": name,
        "MetricDescription": f"{name} description",
        "MetricUnit": "ms",
        "Attributes": attrs,
        "StartTimeUnix": start,
        "TimeUnix": T1,
    }


def no_exemplars() -> dict[str, list[Any]]:
    return {"Exemplars.FilteredAttributes": [], "Exemplars.TimeUnix": [], "Exemplars.Value": [],
            "Exemplars.SpanId": [], "Exemplars.TraceId": []}  # fmt: skip


ONE_EXEMPLAR = {
    "Exemplars.FilteredAttributes": [{"user": "u1"}],
    "Exemplars.TimeUnix": [T1 - 5],
    "Exemplars.Value": [3.0],
    "Exemplars.SpanId": ["b7ad6b7169203331"],
    "Exemplars.TraceId": ["0af7651916cd43dd8448eb211c80319c"],
}


def metric(name: str, **data: Any) -> Metric:
    return Metric(name=name, description=f"{name} description", unit="ms", **data)


POINTS = [
    pytest.param(
        metric("queue.depth", gauge=Gauge(data_points=[NumberDataPoint(
            attributes=[kv("queue", string_value="q1")], time_unix_nano=T1, as_int=7, flags=1,
            exemplars=[exemplar(as_int=3)])])),
        "otel_metrics_gauge",
        {**common("queue.depth", {"queue": "q1"}, start=0), "Value": 7.0, "Flags": 1, **ONE_EXEMPLAR},
        id="gauge-int-point-with-exemplar",
    ),
    pytest.param(
        metric("cpu", gauge=Gauge(data_points=[
            NumberDataPoint(time_unix_nano=T1, start_time_unix_nano=T0, as_double=0.5)])),
        "otel_metrics_gauge",
        {**common("cpu", {}), "Value": 0.5, "Flags": 0, **no_exemplars()},
        id="gauge-double-point",
    ),
    pytest.param(
        metric("requests", sum=Sum(aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=True,
               data_points=[NumberDataPoint(attributes=[kv("code", int_value=200)], start_time_unix_nano=T0,
                                            time_unix_nano=T1, as_int=12, exemplars=[exemplar(as_double=3.0)])])),
        "otel_metrics_sum",
        {**common("requests", {"code": "200"}), "Value": 12.0, "Flags": 0, **ONE_EXEMPLAR,
         "AggregationTemporality": 2, "IsMonotonic": True},
        id="sum-cumulative-monotonic",
    ),
    pytest.param(
        metric("latency", histogram=Histogram(aggregation_temporality=AGGREGATION_TEMPORALITY_DELTA, data_points=[
            HistogramDataPoint(start_time_unix_nano=T0, time_unix_nano=T1, count=6, sum=42.5, bucket_counts=[1, 2, 3],
                               explicit_bounds=[5.0, 10.0], min=0.5, max=20.0, exemplars=[exemplar(as_double=3.0)])])),
        "otel_metrics_histogram",
        {**common("latency", {}), "Count": 6, "Sum": 42.5, "BucketCounts": [1, 2, 3], "ExplicitBounds": [5.0, 10.0],
         **ONE_EXEMPLAR, "Flags": 0, "Min": 0.5, "Max": 20.0, "AggregationTemporality": 1},
        id="histogram",
    ),
    pytest.param(
        metric("latency.exp", exponential_histogram=ExponentialHistogram(
            aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE, data_points=[ExponentialHistogramDataPoint(
                start_time_unix_nano=T0, time_unix_nano=T1, count=9, sum=-3.0, scale=-2, zero_count=1,
                positive=ExponentialHistogramDataPoint.Buckets(offset=-1, bucket_counts=[4, 2]),
                negative=ExponentialHistogramDataPoint.Buckets(offset=3, bucket_counts=[2]), min=-9.0, max=7.0)])),
        "otel_metrics_exp_histogram",
        {**common("latency.exp", {}), "Count": 9, "Sum": -3.0, "Scale": -2, "ZeroCount": 1, "PositiveOffset": -1,
         "PositiveBucketCounts": [4, 2], "NegativeOffset": 3, "NegativeBucketCounts": [2], **no_exemplars(),
         "Flags": 0, "Min": -9.0, "Max": 7.0, "AggregationTemporality": 2},
        id="exponential-histogram",
    ),
    pytest.param(
        metric("rpc.size", summary=Summary(data_points=[SummaryDataPoint(
            start_time_unix_nano=T0, time_unix_nano=T1, count=4, sum=10.0,
            quantile_values=[SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2.0),
                             SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=4.0)])])),
        "otel_metrics_summary",
        {**common("rpc.size", {}), "Count": 4, "Sum": 10.0, "ValueAtQuantiles.Quantile": [0.5, 0.99],
         "ValueAtQuantiles.Value": [2.0, 4.0], "Flags": 0},
        id="summary",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("point_metric", "table", "expected"), POINTS)
def test_each_point_type_gives_exact_row(point_metric: Metric, table: str, expected: dict[str, Any]) -> None:
    tables = decode_metrics(request(point_metric))
    assert list(tables) == list(METRIC_TABLES)
    assert {name: len(rows) for name, rows in tables.items() if rows} == {table: 1}
    [row] = tables[table]
    assert row == expected
    # Key order is the insert column order, so it must follow the DDL as written above.
    assert list(row) == list(expected)
    assert isinstance(row.get("Value", 0.0), float)


def test_metric_without_data_is_skipped() -> None:
    tables = decode_metrics(request(Metric(name="empty"), metric("g", gauge=Gauge(data_points=[NumberDataPoint()]))))
    assert [row["MetricName"] for rows in tables.values() for row in rows] == ["g"]


def test_points_keep_request_order_within_a_table() -> None:
    points = [NumberDataPoint(time_unix_nano=T1 + i, as_double=float(i)) for i in range(3)]
    req = request(metric("a", gauge=Gauge(data_points=points[:2])), metric("b", gauge=Gauge(data_points=points[2:])))
    tables = decode_metrics(req)
    assert [(r["MetricName"], r["Value"]) for r in tables["otel_metrics_gauge"]] == [("a", 0.0), ("a", 1.0), ("b", 2.0)]


def test_exemplar_rows_one_per_exemplar() -> None:
    req = request(
        metric("g", gauge=Gauge(data_points=[NumberDataPoint(attributes=[kv("k", string_value="v")], time_unix_nano=T1,
               exemplars=[exemplar(as_int=3), exemplar(time_ns=0, as_double=1.5)])])),
        metric("s", sum=Sum(data_points=[NumberDataPoint(time_unix_nano=T1, exemplars=[exemplar(as_double=2.0)])])),
        metric("h", histogram=Histogram(data_points=[
            HistogramDataPoint(time_unix_nano=T1, exemplars=[exemplar(as_double=4.0)])])),
        metric("e", exponential_histogram=ExponentialHistogram(data_points=[
            ExponentialHistogramDataPoint(
                time_unix_nano=T1, exemplars=[Exemplar(as_double=5.0, time_unix_nano=T1 - 1)])])),
        metric("q", summary=Summary(data_points=[SummaryDataPoint(time_unix_nano=T1)])),
    )  # fmt: skip
    rows = decode_metric_exemplars(req)
    assert rows == exemplar_rows(decode_metrics(req))
    assert all(tuple(row) == EXEMPLAR_COLUMNS for row in rows)
    trace, span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    summary = [(r["MetricName"], r["MetricType"], r["Timestamp"], r["Value"], r["TraceId"], r["SpanId"]) for r in rows]
    assert summary == [
        ("g", "gauge", T1 - 5, 3.0, trace, span),
        ("g", "gauge", T1, 1.5, trace, span),  # no exemplar time: the point's time
        ("s", "sum", T1 - 5, 2.0, trace, span),
        ("h", "histogram", T1 - 5, 4.0, trace, span),
        ("e", "exp_histogram", T1 - 1, 5.0, "", ""),
    ]
    assert rows[0]["ServiceName"] == "api"
    assert rows[0]["Attributes"] == {"k": "v"}
    assert rows[0]["FilteredAttributes"] == {"user": "u1"}
    assert {r["CorrelationId"] for r in rows} == {""}


def test_no_exemplars_no_rows() -> None:
    assert exemplar_rows(decode_metrics(request(metric("g", gauge=Gauge(data_points=[NumberDataPoint()]))))) == []
    assert exemplar_rows({}) == []
