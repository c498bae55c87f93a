"""OTLP/JSON decode and encode, with the OTLP project's own example bodies."""
from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from core.errors import DecodeError
from schemas.otlp_json import parse_otlp_json, to_otlp_dict, to_otlp_json
from tests.support.testdata import OTLP_EXAMPLES

EXAMPLE_FILES = [
    pytest.param("trace.json", ExportTraceServiceRequest, id="trace"),
    pytest.param("logs.json", ExportLogsServiceRequest, id="logs"),
    pytest.param("events.json", ExportLogsServiceRequest, id="events"),
    pytest.param("metrics.json", ExportMetricsServiceRequest, id="metrics"),
]


def _lower_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: v.lower() if k in ("traceId", "spanId", "parentSpanId") else _lower_ids(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_lower_ids(v) for v in node]
    return node


@pytest.mark.parametrize(("name", "message_type"), EXAMPLE_FILES)
def test_examples_round_trip(name: str, message_type: type[Message]) -> None:
    raw = (OTLP_EXAMPLES / name).read_bytes()
    message = parse_otlp_json(raw, message_type)
    assert message.ByteSize() > 0
    again = parse_otlp_json(to_otlp_json(message), message_type)
    assert again == message
    # Our output differs from the example only in ID case and in leaving defaults out.
    assert parse_otlp_json(_lower_ids(orjson.loads(raw)), message_type) == message


def test_trace_example_ids_are_hex_and_enums_ints() -> None:
    message = parse_otlp_json((OTLP_EXAMPLES / "trace.json").read_bytes(), ExportTraceServiceRequest)
    span = message.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.parent_span_id.hex() == "eee19b7ec3c1b173"
    assert span.kind == 2 and span.start_time_unix_nano == 1544712660000000000
    out = to_otlp_dict(message)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert out["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert out["kind"] == 2 and out["startTimeUnixNano"] == "1544712660000000000"


def test_log_example_ids() -> None:
    message = parse_otlp_json((OTLP_EXAMPLES / "logs.json").read_bytes(), ExportLogsServiceRequest)
    log = message.resource_logs[0].scope_logs[0].log_records[0]
    assert log.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert log.severity_number == 10


def _span_body(**span: Any) -> dict[str, Any]:
    base = {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174", "name": "x"}
    base.update(span)
    return {"resourceSpans": [{"scopeSpans": [{"spans": [base]}]}]}


ERROR_CASES = [
    pytest.param(b"{not json", "not valid JSON", id="bad-json"),
    pytest.param(b"[1, 2]", "expected a JSON object at the top level, got list", id="top-level-array"),
    pytest.param(_span_body(traceId="abc"),
                 "resourceSpans[0].scopeSpans[0].spans[0].traceId: not 32 hex characters", id="short-id"),
    pytest.param(_span_body(spanId="ZZE19B7EC3C1B174"),
                 "resourceSpans[0].scopeSpans[0].spans[0].spanId: not 16 hex characters", id="non-hex"),
    pytest.param(_span_body(spanId="ee e19b7ec3c1b17"),
                 "resourceSpans[0].scopeSpans[0].spans[0].spanId: not 16 hex characters", id="blank-in-hex"),
    pytest.param(_span_body(traceId=12), "traceId: expected a hex string, got int", id="id-not-string"),
    pytest.param(_span_body(links=[{"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "00"}]),
                 "spans[0].links[0].spanId: not 16 hex characters", id="link-id"),
    pytest.param({"resourceSpans": {"a": 1}}, "resourceSpans: expected an array", id="not-an-array"),
    pytest.param(_span_body(kind=[2]), "invalid OTLP JSON", id="bad-enum"),
    pytest.param(_span_body(startTimeUnixNano="soon"), "invalid OTLP JSON", id="bad-int64"),
]


@pytest.mark.parametrize(("body", "expected"), ERROR_CASES)
def test_decode_errors_name_the_problem(body: Any, expected: str) -> None:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(DecodeError) as info:
        parse_otlp_json(data, ExportTraceServiceRequest)
    assert expected in str(info.value)


def test_int64_as_string_or_number_and_unknown_fields_ignored() -> None:
    as_string = parse_otlp_json(_span_body(startTimeUnixNano="1544712660000000000"), ExportTraceServiceRequest)
    as_number = parse_otlp_json(_span_body(startTimeUnixNano=1544712660000000000, futureField={"a": 1}),
                                ExportTraceServiceRequest)
    assert as_string == as_number
    assert as_string.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano == 1544712660000000000


def test_empty_ids_and_snake_case_keys() -> None:
    body = {"resource_logs": [{"scope_logs": [{"log_records": [{"trace_id": "5B8EFFF798038103D269B633813FC60C",
                                                                "spanId": ""}]}]}]}
    message = parse_otlp_json(copy.deepcopy(body), ExportLogsServiceRequest)
    log = message.resource_logs[0].scope_logs[0].log_records[0]
    assert log.trace_id.hex() == "5b8efff798038103d269b633813fc60c" and log.span_id == b""


def test_exemplar_ids_both_ways() -> None:
    exemplar = {"asDouble": 1.5, "timeUnixNano": "1", "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "EEE19B7EC3C1B174"}
    body = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "h", "histogram": {"aggregationTemporality": 2,
                                    "dataPoints": [{"count": "1", "exemplars": [exemplar]}]}}]}]}]}
    message = parse_otlp_json(body, ExportMetricsServiceRequest)
    point = message.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    assert point.exemplars[0].trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    out = to_otlp_dict(message)
    got = out["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
    assert got["exemplars"][0]["spanId"] == "eee19b7ec3c1b174"
