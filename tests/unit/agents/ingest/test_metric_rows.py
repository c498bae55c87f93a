"""OTLP metrics through the ingest path (agents/ingest/metrics.py): one row per data point in
its kind's table, one metric_exemplars row per exemplar, point attributes past the
cardinality limit as the overflow marker, and records refused whole for times past 2262 or
text that is not UTF-8."""
from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
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
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from agents.cardinality import OVERFLOW_VALUE, CardinalityLimiter
from agents.ingest.config import IngestConfig
from agents.ingest.metrics import MetricPlan
from agents.ingest.state import TraceStates
from schemas.otlp_sql import MAX_NANOS
from schemas.tables import EXEMPLARS_TABLE, METRIC_TABLE_BY_KIND
from sinks.warehouse import Warehouse
from tests.support.ingesting import IngestedRows, ingest_rows, numbered, spliced

T0 = 1_700_000_000_000_000_000
T1 = T0 + 60_000_000_000
TRACE_ID = bytes.fromhex("0AF7651916CD43DD8448EB211C80319C")
SPAN_ID = bytes.fromhex("B7AD6B7169203331")
GAUGE, SUM = METRIC_TABLE_BY_KIND["gauge"], METRIC_TABLE_BY_KIND["sum"]
_EXEMPLAR_TYPES = {GAUGE: "gauge", SUM: "sum", METRIC_TABLE_BY_KIND["histogram"]: "histogram",
                   METRIC_TABLE_BY_KIND["exponential_histogram"]: "exp_histogram"}


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def exemplar(time_ns: int = T1 - 5, **value: Any) -> Exemplar:
    return Exemplar(filtered_attributes=[kv("user", string_value="u1")], time_unix_nano=time_ns,
                    span_id=SPAN_ID, trace_id=TRACE_ID, **value)  # fmt: skip


def request(*metrics: Metric, resource: list[KeyValue] | None = None) -> ExportMetricsServiceRequest:
    attrs = [kv("service.name", string_value="api")] if resource is None else resource
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=Resource(attributes=attrs),
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


def gauge(name: str, *points: NumberDataPoint) -> Metric:
    return Metric(name=name, gauge=Gauge(data_points=points))


def point(time_ns: int = T1, **attrs: str) -> NumberDataPoint:
    return NumberDataPoint(time_unix_nano=time_ns, as_int=1,
                           attributes=[kv(k, string_value=v) for k, v in attrs.items()])


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


@pytest.fixture(scope="module")
def point_batch(ingest_warehouse: Warehouse) -> IngestedRows:
    return ingest_rows(ingest_warehouse, "metrics", [request(case.values[0]) for case in POINTS])


@pytest.mark.parametrize(("record", "point_metric", "table", "expected"), numbered(POINTS))
def test_each_point_type_gives_exact_row(point_batch: IngestedRows, record: int, point_metric: Metric, table: str,
                                         expected: dict[str, Any]) -> None:
    # The old decoder returned all five tables, empty ones too; the ingest output has the
    # tables the batch has rows for (metric_exemplars: see the exemplar tests).
    assert record not in point_batch.refused
    tables = point_batch.of(record)
    assert {name: len(rows) for name, rows in tables.items() if rows and name != EXEMPLARS_TABLE} == {table: 1}
    [row] = tables[table]
    assert row == expected
    # Key order is the insert column order, so it must follow the DDL as written above.
    assert list(row) == list(expected)
    assert isinstance(row.get("Value", 0.0), float)


def test_metric_without_data_is_skipped(ingest_warehouse: Warehouse) -> None:
    out = ingest_rows(ingest_warehouse, "metrics",
                      [request(Metric(name="empty"), metric("g", gauge=Gauge(data_points=[NumberDataPoint()])))])
    assert [row["MetricName"] for rows in out.tables.values() for row in rows] == ["g"]
    assert (out.refused, out.counts["points"]) == ({}, 1)


def test_points_keep_request_order_within_a_table(ingest_warehouse: Warehouse) -> None:
    points = [NumberDataPoint(time_unix_nano=T1 + i, as_double=float(i)) for i in range(3)]
    req = request(metric("a", gauge=Gauge(data_points=points[:2])), metric("b", gauge=Gauge(data_points=points[2:])))
    second = request(metric("c", gauge=Gauge(data_points=[NumberDataPoint(as_double=9.0)])),
                     resource=[kv("service.name", string_value="other")])
    out = ingest_rows(ingest_warehouse, "metrics", [req, second])
    assert [(r["MetricName"], r["Value"], r["ServiceName"]) for r in out.rows(GAUGE)] == [
        ("a", 0.0, "api"), ("a", 1.0, "api"), ("b", 2.0, "api"), ("c", 9.0, "other")]
    assert out.records[GAUGE] == [0, 0, 0, 1]


def test_points_of_several_resources_and_scopes_keep_request_order(ingest_warehouse: Warehouse) -> None:
    def resource(service: str, *scopes: list[Metric]) -> ResourceMetrics:
        return ResourceMetrics(resource=Resource(attributes=[kv("service.name", string_value=service)]),
                               scope_metrics=[ScopeMetrics(scope=InstrumentationScope(name=f"{service}-{i}"),
                                                           metrics=m) for i, m in enumerate(scopes)])

    req = ExportMetricsServiceRequest(resource_metrics=[
        resource("r1", [gauge("a", point(), point())], [gauge("b", point())]), resource("r2", [gauge("c", point())])])
    rows = ingest_rows(ingest_warehouse, "metrics", [req]).rows(GAUGE)
    assert [(r["ServiceName"], r["ScopeName"], r["MetricName"]) for r in rows] == [
        ("r1", "r1-0", "a"), ("r1", "r1-0", "a"), ("r1", "r1-1", "b"), ("r2", "r2-0", "c")]


def expected_exemplars(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """metric_exemplars rows as the old exemplar_rows derived them from the points' rows:
    one per exemplar, table by table; a point's time when the exemplar has none."""
    out = []
    for table, metric_type in _EXEMPLAR_TYPES.items():
        for row in tables.get(table, ()):
            for time_ns, value, trace_id, span_id, filtered in zip(
                    row["Exemplars.TimeUnix"], row["Exemplars.Value"], row["Exemplars.TraceId"],
                    row["Exemplars.SpanId"], row["Exemplars.FilteredAttributes"], strict=True):
                out.append({"Timestamp": time_ns or row["TimeUnix"], "MetricName": row["MetricName"],
                            "MetricType": metric_type, "ServiceName": row["ServiceName"], "Value": value,
                            "TraceId": trace_id, "SpanId": span_id, "CorrelationId": "",
                            "FilteredAttributes": filtered, "Attributes": row["Attributes"],
                            "Tenant": row["ResourceAttributes"].get("tenant.id", "")})
    return out


def test_exemplar_rows_one_per_exemplar(ingest_warehouse: Warehouse) -> None:
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
    out = ingest_rows(ingest_warehouse, "metrics", [req])
    rows = out.rows(EXEMPLARS_TABLE)
    assert rows == expected_exemplars(out.tables)
    assert all(list(row) == list(rows[0]) for row in rows)
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
    # No trace of theirs was seen before: '' (resolved at query time), as before.
    assert {r["CorrelationId"] for r in rows} == {""}


def test_exemplar_rows_come_table_by_table_within_a_record(ingest_warehouse: Warehouse) -> None:
    # The old exemplar_rows went table by table (gauge, sum, histogram, exp histogram) over
    # the record's rows, whatever the order of the metrics in the request.
    req = request(metric("s", sum=Sum(data_points=[NumberDataPoint(exemplars=[exemplar(as_int=1)])])),
                  metric("g", gauge=Gauge(data_points=[NumberDataPoint(exemplars=[exemplar(as_int=2)])])))
    later = request(metric("g2", gauge=Gauge(data_points=[NumberDataPoint(exemplars=[exemplar(as_int=3)])])))
    out = ingest_rows(ingest_warehouse, "metrics", [req, later])
    assert [r["MetricName"] for r in out.rows(EXEMPLARS_TABLE)] == ["g", "s", "g2"]
    assert out.records[EXEMPLARS_TABLE] == [0, 0, 1]


def test_no_exemplars_no_rows(ingest_warehouse: Warehouse) -> None:
    out = ingest_rows(ingest_warehouse, "metrics", [request(metric("g", gauge=Gauge(data_points=[NumberDataPoint()])))])
    assert out.rows(EXEMPLARS_TABLE) == []
    assert list(out.tables) == [GAUGE]


def test_an_exemplar_carries_the_correlation_id_of_a_trace_seen_before(ingest_warehouse: Warehouse) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    states = TraceStates(ingest_warehouse, 100)
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, start_time_unix_nano=T0,
                attributes=[kv("correlation_id", string_value="req-9")])
    spans = ingest_rows(ingest_warehouse, "traces", [ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        scope_spans=[ScopeSpans(spans=[span])])])], states=states)
    states.remember(spans.updates)
    other = Exemplar(as_int=1, trace_id=bytes(range(16)), span_id=SPAN_ID)
    req = request(metric("g", gauge=Gauge(data_points=[NumberDataPoint(exemplars=[exemplar(as_int=1), other])])))
    rows = ingest_rows(ingest_warehouse, "metrics", [req], states=states).rows(EXEMPLARS_TABLE)
    assert [r["CorrelationId"] for r in rows] == ["req-9", ""]


PAST_2262 = MAX_NANOS + 1
NOT_STORABLE = [
    pytest.param(request(gauge("g", NumberDataPoint(time_unix_nano=PAST_2262))),
                 "a metric data point is stamped past 2262 (beyond DateTime64 nanoseconds)", id="time-past-2262"),
    pytest.param(request(gauge("g", NumberDataPoint(time_unix_nano=T1, start_time_unix_nano=(1 << 64) - 1))),
                 "a metric data point is stamped past 2262 (beyond DateTime64 nanoseconds)", id="start-past-2262"),
    pytest.param(request(metric("h", histogram=Histogram(data_points=[HistogramDataPoint(
                     time_unix_nano=T1, exemplars=[Exemplar(as_int=1, time_unix_nano=PAST_2262)])]))),
                 "a metric exemplar is stamped past 2262 (beyond DateTime64 nanoseconds)", id="exemplar-past-2262"),
    pytest.param(request(metric("q", summary=Summary(data_points=[SummaryDataPoint(time_unix_nano=PAST_2262)]))),
                 "a metric data point is stamped past 2262 (beyond DateTime64 nanoseconds)", id="summary-past-2262"),
    pytest.param(spliced(request(gauge("BAD!", point())), "BAD!", b"\xff\xfeX!"),
                 "a metric holds text that is not valid UTF-8", id="metric-name-not-utf8"),
    pytest.param(spliced(request(gauge("g", point(user="BAD!"))), "BAD!", b"\xc3\x28X!"),
                 "a metric holds text that is not valid UTF-8", id="point-attribute-not-utf8"),
    pytest.param(spliced(request(metric("g", gauge=Gauge(data_points=[NumberDataPoint(exemplars=[
                     Exemplar(filtered_attributes=[kv("k", string_value="BAD!")])])]))), "BAD!", b"X\x80X!"),
                 "a metric holds text that is not valid UTF-8", id="exemplar-attribute-not-utf8"),
    pytest.param(spliced(request(gauge("g", point()), resource=[kv("BAD!", string_value="v")]), "BAD!",
                         b"\xed\xa0\x80!"),
                 "a metric holds text that is not valid UTF-8", id="resource-key-surrogate"),
]


def test_a_record_that_cannot_be_stored_is_refused_whole(ingest_warehouse: Warehouse) -> None:
    # Intended differences: a time past 2262 made a row ClickHouse refused, and protobuf
    # cannot serialize text that is not UTF-8 (built by hand here); now the record is set
    # aside whole, with the reason, and its neighbours are stored (the last nanosecond
    # DateTime64(9) holds among them).
    good = request(gauge("ok", point(), point(time_ns=MAX_NANOS)))
    values = [good, *(case.values[0] for case in NOT_STORABLE), good]
    out = ingest_rows(ingest_warehouse, "metrics", values)
    assert out.refused == {i + 1: ("refused", case.values[1]) for i, case in enumerate(NOT_STORABLE)}
    assert [(r["MetricName"], r["TimeUnix"]) for rows in out.tables.values() for r in rows] == [
        ("ok", T1), ("ok", MAX_NANOS)] * 2
    assert out.counts["points"] == 4


# The cardinality limit: at most max_values distinct values per point-attribute key, in
# order of first appearance over the batch (record, then kind, then request position).
LIMIT_CASES = [
    pytest.param(
        [request(gauge("g", point(user="a"), point(user="b"))),
         request(gauge("g", point(user="c"), point(user="a"), point(user="d"), point(user="c")))],
        2, [["a", "b"], ["__overflow__", "a", "__overflow__", "__overflow__"]], {"user": 3},
        id="first-appearances-admitted-overflow-counted-per-occurrence"),
    pytest.param(
        [request(Metric(name="s", sum=Sum(data_points=[point(k="x")])), gauge("g", point(k="y")))],
        1, [["y", "__overflow__"]], {"k": 1},
        id="gauges-before-sums-within-a-record-whatever-the-request-order"),
    pytest.param(
        [request(gauge("g", point(k="x"))), request(gauge("g", point(k="y"), point(k="x")))],
        1, [["x"], ["__overflow__", "x"]], {"k": 1}, id="earlier-record-first"),
    pytest.param(
        [request(gauge("g", point(a="1", b="1"), point(a="2", b="1")))],
        1, [["1", "1", "__overflow__", "1"]], {"a": 1}, id="each-key-has-its-own-limit"),
    pytest.param(
        [request(gauge("g", point(user=OVERFLOW_VALUE), point(user="a"), point(user="b")))],
        1, [["__overflow__", "__overflow__", "__overflow__"]], {"user": 2},
        id="a-value-that-is-the-marker-reads-the-same"),
]


def limited_values(out: IngestedRows, records: int) -> list[list[str]]:
    """Per record: the values of every point attribute, over gauges then sums, in row order."""
    values: list[list[str]] = [[] for _ in range(records)]
    for table in (GAUGE, SUM):
        for row, record in zip(out.rows(table), out.records.get(table, []), strict=True):
            values[record].extend(row["Attributes"].values())
    return values


@pytest.mark.parametrize(("values", "max_values", "expected", "overflows"), LIMIT_CASES)
def test_point_attributes_past_the_cardinality_limit_overflow(ingest_warehouse: Warehouse, values: list[Any],
                                                              max_values: int, expected: list[list[str]],
                                                              overflows: dict[str, int]) -> None:
    limiter = CardinalityLimiter(max_values, 3600)
    out = ingest_rows(ingest_warehouse, "metrics", values, limiter=limiter)
    assert limited_values(out, len(values)) == expected
    assert limiter.overflow_counts() == overflows
    assert out.counts["cardinality_overflow"] == sum(overflows.values())


def test_keys_past_max_keys_overflow_every_value(ingest_warehouse: Warehouse) -> None:
    limiter = CardinalityLimiter(10, 3600, max_keys=1)
    out = ingest_rows(ingest_warehouse, "metrics", [request(gauge("g", point(a="1", b="2"), point(b="3", a="4")))],
                      limiter=limiter)
    assert [row["Attributes"] for row in out.rows(GAUGE)] == [{"a": "1", "b": OVERFLOW_VALUE},
                                                              {"b": OVERFLOW_VALUE, "a": "4"}]
    assert limiter.overflow_counts() == {"b": 2}


def test_the_limit_holds_across_batches_and_frees_slots_after_the_window(ingest_warehouse: Warehouse) -> None:
    limiter, now = CardinalityLimiter(1, window_s=60), [1000.0]
    plans = {"metrics": MetricPlan(IngestConfig(), limiter, clock=lambda: now[0])}

    def users(user: str) -> list[str]:
        out = ingest_rows(ingest_warehouse, "metrics", [request(gauge("g", point(user=user)))], plans=plans)
        return [row["Attributes"]["user"] for row in out.rows(GAUGE)]

    assert users("a") == ["a"]
    assert users("b") == [OVERFLOW_VALUE]  # the slot is a's, in the next batch too
    now[0] += 61
    assert users("b") == ["b"]  # a has expired


def test_only_point_attributes_are_limited_and_exemplars_show_the_limited_ones(ingest_warehouse: Warehouse) -> None:
    # Intended difference: metric_exemplars.Attributes holds the point's attributes after
    # the limit, as the metrics tables do (the old exemplar_rows ran before the limit).
    def with_exemplar(user: str) -> NumberDataPoint:
        return NumberDataPoint(time_unix_nano=T1, attributes=[kv("user", string_value=user)],
                               exemplars=[Exemplar(as_int=1, filtered_attributes=[kv("user", string_value=user)])])

    many = [kv("service.name", string_value="api"), kv("user", string_value="r")]
    req = request(metric("g", gauge=Gauge(data_points=[with_exemplar("a"), with_exemplar("b")])), resource=many)
    out = ingest_rows(ingest_warehouse, "metrics", [req], limiter=CardinalityLimiter(1, 3600))
    assert [r["Attributes"] for r in out.rows(GAUGE)] == [{"user": "a"}, {"user": OVERFLOW_VALUE}]
    assert [r["Attributes"] for r in out.rows(EXEMPLARS_TABLE)] == [{"user": "a"}, {"user": OVERFLOW_VALUE}]
    # Resource and exemplar (filtered) attributes are not the series key: never limited.
    assert [r["FilteredAttributes"] for r in out.rows(EXEMPLARS_TABLE)] == [{"user": "a"}, {"user": "b"}]
    assert {r["ResourceAttributes"]["user"] for r in out.rows(GAUGE)} == {"r"}


def test_refused_records_take_no_slot_of_the_limit(ingest_warehouse: Warehouse) -> None:
    limiter = CardinalityLimiter(1, 3600)
    late = request(gauge("g", NumberDataPoint(time_unix_nano=PAST_2262, attributes=[kv("user", string_value="x")])))
    out = ingest_rows(ingest_warehouse, "metrics", [late, request(gauge("g", point(user="y")))], limiter=limiter)
    assert list(out.refused) == [0]
    assert [r["Attributes"] for r in out.rows(GAUGE)] == [{"user": "y"}]
    assert limiter.overflow_counts() == {}
