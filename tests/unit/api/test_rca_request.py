"""Request analysis from plain rows: the response's findings, confidences and evidence."""
from __future__ import annotations

from typing import Any

from api.queries.correlation import CorrelationRows
from api.rca.request import analyze_request, summary_line

T0 = 1_768_471_200_000_000_000  # 2026-01-15T10:00:00Z
MS = 1_000_000
TRACE = "a" * 32


def span(span_id: str, parent: str, at_ms: int, dur_ms: int, service: str, name: str, status: str = "Ok",
         message: str = "", trace: str = TRACE) -> dict[str, Any]:
    return {"ts_ns": T0 + at_ms * MS, "TraceId": trace, "SpanId": span_id, "ParentSpanId": parent,
            "SpanName": name, "SpanKind": "Server", "ServiceName": service, "Duration": dur_ms * MS,
            "StatusCode": status, "StatusMessage": message, "SpanAttributes": {}, "ResourceAttributes": {},
            "event_ts_ns": [], "event_names": [], "event_attributes": [], "CorrelationId": "order-1"}


def log(at_ms: int, span_id: str, service: str, number: int, body: str) -> dict[str, Any]:
    return {"ts_ns": T0 + at_ms * MS, "TraceId": TRACE, "SpanId": span_id, "SeverityText": "",
            "SeverityNumber": number, "ServiceName": service, "Body": body, "LogAttributes": {},
            "ResourceAttributes": {}, "CorrelationId": "order-1"}


# web -> pay (fails after its db call failed) and -> stock (slow, overlapping pay).
ROWS = CorrelationRows(
    correlation_id="order-1", trace_ids=[TRACE],
    spans=[span("s1", "", 0, 300, "web", "GET /checkout", "Error", "upstream failed"),
           span("s2", "s1", 10, 50, "pay", "charge", "Error", "db failed"),
           span("s3", "s2", 20, 10, "db", "INSERT", "Error", "disk full"),
           span("s4", "s1", 40, 250, "stock", "reserve")],
    logs=[log(25, "s3", "db", 17, "disk full on /var"), log(26, "s3", "db", 9, "retrying"),
          log(27, "s2", "pay", 17, "charge failed")],
    exemplars=[{"ts_ns": T0 + 290 * MS, "MetricName": "latency", "MetricType": "histogram", "ServiceName": "stock",
                "Value": 250.0, "TraceId": TRACE, "SpanId": "s4", "CorrelationId": "", "FilteredAttributes": {},
                "Attributes": {}}],
)


def test_the_error_origin_is_the_deepest_failure_with_its_error_logs() -> None:
    found = analyze_request(ROWS)
    origin = found["error_origin"]
    assert (origin["span_id"], origin["service"], origin["message"], origin["depth"]) == ("s3", "db", "disk full", 2)
    assert [entry["body"] for entry in origin["logs"]] == ["disk full on /var"]
    assert (origin["failing_traces"], origin["agreeing_traces"], origin["share"]) == (1, 1, 1.0)
    assert found["root_cause"] == {"service": "db", "operation": "INSERT", "kind": "error", "confidence": 1.0,
                                   "span_id": "s3", "trace_id": TRACE}


def test_the_critical_path_and_the_latency_finding() -> None:
    found = analyze_request(ROWS)
    assert [(s["span_id"], s["self_time_ms"]) for s in found["critical_path"]] == [("s1", 50.0), ("s4", 250.0)]
    assert found["critical_path_ms"] == 300.0 and found["duration_ms"] == 300.0
    assert [s["share"] for s in found["critical_path"]] == [round(50 / 300, 6), round(250 / 300, 6)]
    latency = found["findings"][1]
    assert (latency["kind"], latency["service"], latency["confidence"]) == ("latency", "stock", round(250 / 300, 6))
    assert [s["span_id"] for s in found["slowest_self_time"]][:3] == ["s4", "s2", "s1"]
    assert found["slowest_self_time"][0]["on_critical_path"] is True


def test_services_and_evidence_name_everything_the_findings_cite() -> None:
    found = analyze_request(ROWS)
    assert [s["service"] for s in found["services"]] == ["stock", "web", "db", "pay"]
    evidence = found["evidence"]
    assert evidence["services"] == ["db", "pay", "stock", "web"]
    assert evidence["span_ids"] == ["s1", "s2", "s3", "s4"] and evidence["trace_ids"] == [TRACE]
    kinds = {(item["finding"], item["type"], item["span_id"]) for item in evidence["items"]}
    assert {("error_origin", "span", "s3"), ("error_origin", "log", "s3"), ("error_origin", "span", "s2"),
            ("critical_path", "span", "s4"), ("critical_path", "exemplar", "s4")} <= kinds
    for finding in found["findings"]:
        assert finding["service"] in evidence["services"] and finding["span_id"] in evidence["span_ids"]


def test_a_healthy_request_has_a_latency_root_cause_and_no_origin() -> None:
    rows = CorrelationRows(correlation_id="ok-1", trace_ids=[TRACE],
                           spans=[span("s1", "", 0, 100, "web", "GET /"), span("s2", "s1", 10, 80, "db", "SELECT")])
    found = analyze_request(rows)
    assert found["error_origin"] is None
    assert found["root_cause"]["kind"] == "latency" and found["root_cause"]["service"] == "db"
    assert found["root_cause"]["confidence"] == 0.8
    assert summary_line(found) == "latency in db SELECT (confidence 0.80)"


def test_logs_alone_have_no_root_cause() -> None:
    found = analyze_request(CorrelationRows(correlation_id="x", trace_ids=[], logs=[log(0, "", "web", 17, "boom")]))
    assert found["root_cause"] is None and found["critical_path"] == [] and found["time_range"] is None
    assert found["services"][0]["error_logs"] == 1
    assert summary_line(found) == "no spans: nothing to analyse"
