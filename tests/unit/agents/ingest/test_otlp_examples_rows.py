"""The official OTLP/JSON examples (opentelemetry-proto ``examples/``) through the ingest path."""
from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agents.correlation import generated_id
from sinks.batches import rows_to_columns
from sinks.warehouse import Warehouse
from tests.support.ingesting import ingest_rows
from tests.support.testdata import OTLP_EXAMPLES

# OTLP/JSON writes these bytes fields as hex; the proto3 JSON mapping json_format reads wants base64.
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})
M = TypeVar("M", bound=Message)


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64encode(bytes.fromhex(value)).decode() if key in _HEX_ID_KEYS else _hex_ids_to_base64(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def load(name: str, message: type[M]) -> tuple[M, dict[str, Any]]:
    """The example as a parsed protobuf request, and its raw JSON for comparisons."""
    raw = json.loads((OTLP_EXAMPLES / name).read_text())
    return json_format.ParseDict(_hex_ids_to_base64(raw), message()), raw


def test_trace_example(ingest_warehouse: Warehouse) -> None:
    request, raw = load("trace.json", ExportTraceServiceRequest)
    out = ingest_rows(ingest_warehouse, "traces", [request])
    [row] = out.rows("otel_traces")
    source = raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    # The example's IDs are upper-case hex; rows hold lower case, as Grafana looks them up.
    assert (row["TraceId"], row["SpanId"], row["ParentSpanId"]) == (
        source["traceId"].lower(), source["spanId"].lower(), source["parentSpanId"].lower())  # fmt: skip
    assert row["TraceId"] == "5b8efff798038103d269b633813fc60c"
    assert (row["SpanName"], row["SpanKind"], row["ServiceName"]) == ("I'm a server span", "Server", "my.service")
    assert (row["ScopeName"], row["ScopeVersion"]) == ("my.library", "1.0.0")
    assert (row["Timestamp"], row["Duration"]) == (1544712660000000000, 1_000_000_000)
    assert (row["StatusCode"], row["Events.Name"], row["Links.TraceId"]) == ("Unset", [], [])
    assert row["SpanAttributes"] == {"my.span.attr": "some value"}
    # The typed resource attributes (SpanRecord.resource_attrs) are read for correlation
    # only: this example has no incoming ID, so its trace's is generated.
    assert row["ResourceAttributes"] == {"service.name": "my.service"}
    assert row["CorrelationId"] == generated_id(row["TraceId"], row["Timestamp"])
    assert out.refused == {}


def test_logs_example(ingest_warehouse: Warehouse) -> None:
    request, _ = load("logs.json", ExportLogsServiceRequest)
    out = ingest_rows(ingest_warehouse, "logs", [request])
    [row] = out.rows("otel_logs")
    assert (row["TraceId"], row["SpanId"]) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    # Intended difference: the severity text is normalised; was (10, "Information").
    assert (row["Timestamp"], row["SeverityNumber"], row["SeverityText"]) == (1544712660300000000, 10, "INFO")
    assert (row["Body"], row["ServiceName"], row["EventName"]) == ("Example log record", "my.service", "")
    assert row["ScopeAttributes"] == {"my.scope.attribute": "some scope attribute"}
    assert row["LogAttributes"] == {
        "string.attribute": "some string",
        "boolean.attribute": "true",
        "int.attribute": "10",
        "double.attribute": "637.704",
        "array.attribute": '["many","values"]',
        "map.attribute": '{"some.map.key":"some value"}',
    }
    # No incoming ID among its typed attributes or in its body: the trace's ID is generated.
    assert row["CorrelationId"] == generated_id(row["TraceId"], row["Timestamp"])


def test_events_example(ingest_warehouse: Warehouse) -> None:
    request, _ = load("events.json", ExportLogsServiceRequest)
    [row] = ingest_rows(ingest_warehouse, "logs", [request]).rows("otel_logs")
    assert (row["EventName"], row["TraceId"], row["SpanId"], row["SeverityNumber"]) == ("browser.page_view", "", "", 9)
    # A kvlist body is JSON with keys sorted, as Go's encoding/json writes the Collector's map.
    assert row["Body"] == (
        '{"referrer":"https://wwww.google.com","title":"Free Online GUID Generator","type":0,'
        '"url":"https://www.guidgenerator.com/online-guid-generator.aspx"}'
    )
    assert row["LogAttributes"] == {"event.attribute": "some event attribute"}
    # No trace: an ID generated from the record's own identity (its time, service and body).
    identity = f"{row['Timestamp']}:my.service:{row['Body']}"
    assert row["CorrelationId"] == generated_id(identity, row["Timestamp"])


def test_metrics_example(ingest_warehouse: Warehouse) -> None:
    request, _ = load("metrics.json", ExportMetricsServiceRequest)
    out = ingest_rows(ingest_warehouse, "metrics", [request])
    # The old decoder listed all five tables; the ingest output lists those with rows.
    assert {table: len(rows) for table, rows in out.tables.items()} == {
        "otel_metrics_gauge": 1,
        "otel_metrics_sum": 1,
        "otel_metrics_histogram": 1,
        "otel_metrics_exp_histogram": 1,
    }
    [counter] = out.rows("otel_metrics_sum")
    assert (counter["MetricName"], counter["Value"], counter["IsMonotonic"], counter["AggregationTemporality"]) == (
        "my.counter", 5.0, True, 1)  # fmt: skip
    assert counter["Attributes"] == {"my.counter.attr": "some value"}
    [gauge] = out.rows("otel_metrics_gauge")
    assert (gauge["MetricDescription"], gauge["Value"], gauge["StartTimeUnix"], gauge["TimeUnix"]) == (
        "I am a Gauge", 10.0, 0, 1544712660300000000)  # fmt: skip
    [histogram] = out.rows("otel_metrics_histogram")
    assert (histogram["Count"], histogram["Sum"]) == (2, 2.0)
    assert (histogram["BucketCounts"], histogram["ExplicitBounds"]) == ([1, 1], [1.0])
    assert (histogram["Min"], histogram["Max"]) == (0.0, 2.0)
    [exponential] = out.rows("otel_metrics_exp_histogram")
    assert (exponential["ZeroCount"], exponential["PositiveOffset"]) == (1, 1)
    assert (exponential["PositiveBucketCounts"], exponential["NegativeBucketCounts"]) == ([0, 2], [])
    assert (exponential["Count"], exponential["Sum"], exponential["Max"]) == (3, 10.0, 5.0)
    assert {row["ServiceName"] for rows in out.tables.values() for row in rows} == {"my.service"}
    assert out.rows("metric_exemplars") == []
    columns = rows_to_columns(out.rows("otel_metrics_histogram"))
    assert columns["MetricName"] == ["my.histogram"]
