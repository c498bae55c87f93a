"""Splitting export requests into Kafka records: table-driven, no broker."""
from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from core.tenancy import TENANT_ATTRIBUTE
from pipeline.gateway.logic import (
    KafkaRecord,
    apply_tenant,
    count_items,
    resource_key,
    split_request,
)

T1, T2 = "0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"
S1, S2, S3 = "b7ad6b7169203331", "00f067aa0ba902b7", "1111111111111111"
BIG = 10**6


def _attrs(**kv: str) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in kv.items()]


def traces(*resources: tuple[str, list[tuple[str, list[tuple[str, str]]]]]) -> ExportTraceServiceRequest:
    """resources: (service, [(scope, [(trace_hex, span_hex), ...]), ...])."""
    req = ExportTraceServiceRequest()
    for service, scopes in resources:
        rs = req.resource_spans.add(schema_url="https://schema/r")
        rs.resource.attributes.extend(_attrs(**{"service.name": service}))
        for scope, spans in scopes:
            ss = rs.scope_spans.add(schema_url="https://schema/s")
            ss.scope.name = scope
            for trace_hex, span_hex in spans:
                ss.spans.add(trace_id=bytes.fromhex(trace_hex), span_id=bytes.fromhex(span_hex),
                             name=f"op-{span_hex[:4]}")
    return req


def logs(*records: tuple[str, str, str]) -> ExportLogsServiceRequest:
    """records: (service, trace_hex or '', span_hex or ''), each service its own resource."""
    req = ExportLogsServiceRequest()
    by_service: dict[str, Any] = {}
    for service, trace_hex, span_hex in records:
        if service not in by_service:
            rl = req.resource_logs.add()
            rl.resource.attributes.extend(_attrs(**{"service.name": service}))
            by_service[service] = rl.scope_logs.add()
        by_service[service].log_records.add(trace_id=bytes.fromhex(trace_hex),
                                            span_id=bytes.fromhex(span_hex))
    return req


def _trace_view(records: list[KafkaRecord]) -> dict[bytes | None, list[tuple[str, str, list[str]]]]:
    """key -> [(service, scope, [span hex])] as the records hold them."""
    out: dict[bytes | None, list[tuple[str, str, list[str]]]] = {}
    for rec in records:
        req = ExportTraceServiceRequest.FromString(rec.value)
        for rs in req.resource_spans:
            assert rs.schema_url == "https://schema/r"
            service = rs.resource.attributes[0].value.string_value
            for ss in rs.scope_spans:
                assert ss.schema_url == "https://schema/s"
                out.setdefault(rec.key, []).append((service, ss.scope.name, [s.span_id.hex() for s in ss.spans]))
    return out


TRACE_CASES = [
    pytest.param(traces(("a", [("s", [(T1, S1)])])),
                 {T1.encode(): [("a", "s", [S1])]}, 0, id="one-span"),
    pytest.param(traces(("a", [("s", [(T1, S1), (T2, S2), (T1, S3)])])),
                 {T1.encode(): [("a", "s", [S1, S3])], T2.encode(): [("a", "s", [S2])]}, 0,
                 id="two-traces-interleaved"),
    pytest.param(traces(("a", [("s", [(T1, S1)])]), ("b", [("t", [(T1, S2)])])),
                 {T1.encode(): [("a", "s", [S1]), ("b", "t", [S2])]}, 0,
                 id="one-trace-across-two-resources"),
    pytest.param(traces(("a", [("empty", []), ("s", [(T1, S1)])]), ("b", [])),
                 {T1.encode(): [("a", "s", [S1])]}, 0, id="empty-envelopes-dropped"),
    pytest.param(traces(), {}, 0, id="empty-request"),
    pytest.param(traces(("a", [("s", [(T1, S1), ("00" * 16, S2)])])),
                 {T1.encode(): [("a", "s", [S1])]}, 1, id="zero-trace-id-rejected"),
    pytest.param(traces(("a", [("s", [(T1, S1), ("abcd", S2), (T2, "00" * 8)])])),
                 {T1.encode(): [("a", "s", [S1])]}, 2, id="bad-ids-rejected"),
]


@pytest.mark.parametrize(("request_", "expected", "rejected"), TRACE_CASES)
def test_split_traces(request_: ExportTraceServiceRequest, expected: dict[Any, Any], rejected: int) -> None:
    result = split_request("traces", request_, BIG)
    assert _trace_view(result.records) == expected
    assert len(result.records) == len(expected)
    assert result.rejected_items == rejected
    assert result.accepted_items == count_items("traces", request_) - rejected
    assert bool(result.error_message) == bool(rejected)
    for rec in result.records:  # assembled bytes are the canonical protobuf encoding
        assert ExportTraceServiceRequest.FromString(rec.value).SerializeToString() == rec.value


LOG_CASES = [
    pytest.param(logs(("a", "", ""), ("b", "", "")), {None: 2}, 0, id="no-trace-one-keyless-record"),
    pytest.param(logs(("a", T1, S1), ("a", "", ""), ("b", T1, S2), ("a", T2, S3)),
                 {T1.encode(): 2, None: 1, T2.encode(): 1}, 0, id="mixed"),
    pytest.param(logs(("a", "00" * 16, S1)), {None: 1}, 0, id="zero-trace-id-is-no-trace"),
    pytest.param(logs(("a", "abcd", ""), ("a", T1, "12")), {}, 2, id="bad-ids-rejected"),
]


@pytest.mark.parametrize(("request_", "expected", "rejected"), LOG_CASES)
def test_split_logs(request_: ExportLogsServiceRequest, expected: dict[Any, int], rejected: int) -> None:
    result = split_request("logs", request_, BIG)
    got = {rec.key: count_items("logs", ExportLogsServiceRequest.FromString(rec.value))
           for rec in result.records}
    assert got == expected
    assert len(result.records) == len(expected)
    assert result.rejected_items == rejected


def _metric(kind: str, points: int) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=f"m.{kind}")
    data = getattr(metric, kind)
    for i in range(points):
        data.data_points.add(time_unix_nano=i + 1)
    return metric


def metrics(*resources: tuple[dict[str, str], list[metrics_pb2.Metric]]) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for attrs, items in resources:
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(_attrs(**attrs))
        rm.scope_metrics.add().metrics.extend(items)
    return req


METRIC_CASES = [
    pytest.param(metrics(({"service.name": "a"}, [_metric("gauge", 2), _metric("sum", 1)])),
                 [3], 3, id="one-resource"),
    pytest.param(metrics(({"service.name": "a"}, [_metric("histogram", 1)]),
                         ({"service.name": "b"}, [_metric("exponential_histogram", 2),
                                                  _metric("summary", 1)])),
                 [1, 3], 4, id="two-resources-all-kinds"),
    pytest.param(metrics(({"service.name": "a"}, [_metric("gauge", 0)]), ({"service.name": "b"}, [])),
                 [], 0, id="metrics-without-points-dropped"),
]


def _only(resource_metrics: metrics_pb2.ResourceMetrics) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(resource_metrics=[resource_metrics])


@pytest.mark.parametrize(("request_", "points_per_record", "accepted"), METRIC_CASES)
def test_split_metrics(request_: ExportMetricsServiceRequest, points_per_record: list[int],
                       accepted: int) -> None:
    result = split_request("metrics", request_, BIG)
    assert [count_items("metrics", ExportMetricsServiceRequest.FromString(r.value))
            for r in result.records] == points_per_record
    assert result.accepted_items == accepted and result.rejected_items == 0
    kept = [rm for rm in request_.resource_metrics if count_items("metrics", _only(rm))]
    for rec, rm in zip(result.records, kept, strict=True):
        assert rec.key == resource_key(rm.resource) and len(rec.key) == 16


def test_resource_key_ignores_attribute_order() -> None:
    one = metrics(({"service.name": "a", "host.name": "h"}, []))
    two = metrics(({"host.name": "h", "service.name": "a"}, []))
    other = metrics(({"host.name": "h", "service.name": "b"}, []))
    key = resource_key(one.resource_metrics[0].resource)
    assert key == resource_key(two.resource_metrics[0].resource)
    assert key != resource_key(other.resource_metrics[0].resource)


def test_large_trace_is_chunked_under_the_record_limit() -> None:
    spans = [(T1, f"{i + 1:016x}") for i in range(200)]
    request_ = traces(("a", [("s", spans)]))
    result = split_request("traces", request_, 2000)
    assert len(result.records) > 1
    assert all(len(r.value) <= 2000 and r.key == T1.encode() for r in result.records)
    seen = [s for _, _, ids in _trace_view(result.records)[T1.encode()] for s in ids]
    assert seen == [s for _, s in spans]
    assert result.accepted_items == 200 and result.rejected_items == 0


def test_span_larger_than_a_record_is_rejected_with_partial_success() -> None:
    request_ = traces(("a", [("s", [(T1, S1), (T2, S2)])]))
    request_.resource_spans[0].scope_spans[0].spans[1].name = "x" * 5000
    result = split_request("traces", request_, 1000)
    assert [r.key for r in result.records] == [T1.encode()]
    assert (result.accepted_items, result.rejected_items) == (1, 1)
    assert "more than 1000 bytes" in result.error_message


@pytest.mark.parametrize("signal", ["traces", "logs", "metrics"])
def test_apply_tenant_adds_and_replaces(signal: str) -> None:
    request_: Any = {"traces": traces(("a", [("s", [(T1, S1)])])),
                     "logs": logs(("a", T1, S1)),
                     "metrics": metrics(({"service.name": "a"}, [_metric("gauge", 1)]))}[signal]
    resource = next(iter(request_.ListFields()))[1][0].resource
    resource.attributes.extend(_attrs(**{TENANT_ATTRIBUTE: "spoofed"}))
    apply_tenant(signal, request_, "acme")  # type: ignore[arg-type]
    tenants = [kv.value.string_value for kv in resource.attributes if kv.key == TENANT_ATTRIBUTE]
    assert tenants == ["acme"]
    assert resource.attributes[0].key == "service.name"


LATE = 2**64 - 1  # uint64 allows it; DateTime64(9) ends at 2**63 - 1


@pytest.mark.parametrize("field", ["start", "end", "event"])
def test_a_span_with_a_time_past_2262_is_refused_and_its_neighbours_kept(field: str) -> None:
    req = traces(("svc", [("s", [(T1, S1), (T1, S2)])]))
    late = req.resource_spans[0].scope_spans[0].spans[1]
    if field == "start":
        late.start_time_unix_nano = LATE
    elif field == "end":
        late.end_time_unix_nano = LATE
    else:
        late.events.add(time_unix_nano=LATE, name="e")
    result = split_request("traces", req, BIG)
    assert (result.accepted_items, result.rejected_items) == (1, 1)
    assert "past 2262-04-11" in result.error_message
    [record] = result.records
    assert [s.span_id.hex() for s in ExportTraceServiceRequest.FromString(record.value).resource_spans[0]
            .scope_spans[0].spans] == [S1]


def test_a_log_with_a_time_past_2262_is_refused() -> None:
    req = logs(("svc", T1, S1), ("svc", T1, S2))
    req.resource_logs[0].scope_logs[0].log_records[0].observed_time_unix_nano = LATE
    result = split_request("logs", req, BIG)
    assert (result.accepted_items, result.rejected_items) == (1, 1)


def test_only_the_points_with_a_time_past_2262_are_refused() -> None:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    for t in (1, LATE, 3):
        metric.gauge.data_points.add(time_unix_nano=t, as_double=1.0)
    metric.gauge.data_points[2].exemplars.add(time_unix_nano=LATE, as_double=1.0)
    result = split_request("metrics", req, BIG)
    assert (result.accepted_items, result.rejected_items) == (1, 2)
    [record] = result.records
    kept = ExportMetricsServiceRequest.FromString(record.value).resource_metrics[0].scope_metrics[0].metrics[0]
    assert [p.time_unix_nano for p in kept.gauge.data_points] == [1]
    assert [p.time_unix_nano for p in metric.gauge.data_points] == [1, LATE, 3]  # the request is not changed
