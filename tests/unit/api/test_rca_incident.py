"""Incident ranking and causal chains on hand-made evidence of the demo topology (pure)."""
from __future__ import annotations

from typing import Any

import pytest

from api.rca.causal import chain_services, counterfactual, event_chain, interpretation, symptoms
from api.rca.incident import METHODS, confidence, depth, rank, trace_signal
from api.rca.incident_evidence import AnomalyWindow, Call, IncidentData, Traffic, traffic_by_service

S = 1_000_000_000
MS = 1_000_000
GW, ORDER, PAY, NOTE, INV = "api-gateway", "order-service", "payment-service", "notification-service", \
    "inventory-service"
CALLS = [(GW, ORDER), (GW, INV), (ORDER, PAY), (ORDER, NOTE)]
# Own work per request before the incident (ms).
SELF_MS = {GW: 3.0, ORDER: 8.0, PAY: 40.0, NOTE: 5.0, INV: 4.0}


def traffic(requests: int = 100, origin: int = 0, self_ms: float = 1.0, failed: int | None = None,
            first_error_ns: int | None = None) -> Traffic:
    return Traffic(requests=requests, failed_requests=origin if failed is None else failed, origin_errors=origin,
                   spans=requests, self_ns=int(requests * self_ms * MS), first_error_ns=first_error_ns,
                   error_trace_id="t" * 32 if origin else "", error_span_id="s" * 16 if origin else "",
                   error_operation="GET /stock" if origin else "", slow_operation="op", slow_trace_id="u" * 32,
                   slow_span_id="v" * 16)


def incident(slow: str | None = None, failing: str | None = None, scores: dict[str, tuple[float, str]] | None = None,
             explained: dict[str, tuple[str, ...]] | None = None) -> IncidentData:
    """A window where ``slow`` does 300 ms more own work or ``failing`` starts 30 % errors;
    its callers fail with it (errors they did not start) and score as the score stage would."""
    before = {s: traffic(self_ms=SELF_MS[s]) for s in SELF_MS}
    now = {}
    for s in SELF_MS:
        callers_of_failing = failing is not None and s in {GW, ORDER} and (s == GW or failing in (PAY, NOTE))
        now[s] = traffic(self_ms=SELF_MS[s] + (300 if s == slow else 0), origin=30 if s == failing else 0,
                         failed=30 if s == failing or callers_of_failing else 0,
                         first_error_ns=10 * S + (0 if s == failing else 1000) if s == failing or callers_of_failing
                         else None)
    windows = tuple(AnomalyWindow(s, 10 * S + i * 5 * S, score, reason, inhibited_by=(explained or {}).get(s, ()))
                    for s, (score, reason) in (scores or {}).items() for i in range(2))
    calls = tuple(Call(a, b, 100, 30 if (failing == b or (a == GW and b == ORDER and failing in (PAY, NOTE))) else 0,
                       10 * S if failing else None, "t" * 32, "s" * 16) for a, b in CALLS)
    return IncidentData(10 * S, 25 * S, 0.5, windows, now, before, calls)


SLOW_PAY = incident(slow=PAY, scores={PAY: (0.9, "latency_p95"), ORDER: (0.8, "latency_p95"),
                                      GW: (0.7, "latency_p95"), NOTE: (0.55, "throughput")},
                    explained={ORDER: (PAY,), GW: (PAY,)})
FAILING_INV = incident(failing=INV, scores={INV: (0.7, "error_rate"), GW: (0.9, "error_rate")},
                       explained={GW: (INV,)})
FAILING_NOTE = incident(failing=NOTE, scores={NOTE: (0.6, "error_rate"), ORDER: (0.8, "error_rate"),
                                              GW: (0.85, "error_rate")})
SLOW_GW = incident(slow=GW, scores={GW: (0.95, "latency_p95")})


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("data", "cause", "kind"), [
    pytest.param(SLOW_PAY, PAY, "latency", id="slow-payment"),
    pytest.param(FAILING_INV, INV, "error", id="failing-inventory"),
    pytest.param(FAILING_NOTE, NOTE, "error", id="failing-notification"),
    pytest.param(SLOW_GW, GW, "latency", id="slow-gateway"),
])
def test_every_method_ranks_the_faulted_service_first(method: str, data: IncidentData, cause: str,
                                                      kind: str) -> None:
    ranked = rank(data, method)
    assert ranked[0].service == cause, ranked
    assert ranked[0].kind == kind
    assert 0 < confidence(ranked, data) <= 1


def test_candidates_can_be_limited_to_a_service_and_its_callees() -> None:
    ranked = rank(FAILING_INV, "combined", within={ORDER, PAY, NOTE})
    assert {c.service for c in ranked} == {ORDER, PAY, NOTE}


@pytest.mark.parametrize(("now", "before", "error", "latency"), [
    pytest.param(traffic(origin=30), traffic(origin=3), True, False, id="errors-rise"),
    pytest.param(traffic(origin=5), traffic(origin=5), False, False, id="errors-as-before"),
    pytest.param(traffic(self_ms=50), traffic(self_ms=40), False, True, id="self-time-up-25pct"),
    pytest.param(traffic(self_ms=44), traffic(self_ms=40), False, False, id="self-time-noise"),
    pytest.param(traffic(requests=0), traffic(), False, False, id="no-requests"),
    pytest.param(traffic(origin=20), None, True, False, id="no-baseline"),
])
def test_trace_signal(now: Traffic, before: Traffic | None, error: bool, latency: bool) -> None:
    signal = trace_signal(now, before)
    assert (signal.error > 0, signal.latency > 0) == (error, latency)
    assert 0 <= signal.strength < 1


def test_depth_counts_calls_from_the_entry() -> None:
    assert depth(SLOW_PAY.graph()) == {GW: 0, ORDER: 1, INV: 1, PAY: 2, NOTE: 2}


def test_traffic_rows_sum_per_service_and_keep_the_worst_operation() -> None:
    row: dict[str, Any] = dict(requests=10, failed_requests=2, origin_errors=2, spans=12, total_self_ns=5 * MS,
                               first_error_ns=7, errors=2, error_trace_id="a", error_span_id="b",
                               error_message="boom", slow_trace_id="c", slow_span_id="d")
    got = traffic_by_service([{**row, "service": INV, "operation": "GET /stock"},
                              {**row, "service": INV, "operation": "GET stock:*", "origin_errors": 0,
                               "total_self_ns": 9 * MS, "first_error_ns": 3}])
    assert got[INV].requests == 20 and got[INV].origin_errors == 2 and got[INV].first_error_ns == 3
    assert (got[INV].error_operation, got[INV].slow_operation) == ("GET /stock", "GET stock:*")


def iso(ns: int) -> str:
    return f"t{ns // S}"


def test_chain_runs_from_the_root_cause_to_the_entry_in_time_order() -> None:
    data = incident(failing=PAY, scores={PAY: (0.8, "error_rate"), ORDER: (0.8, "error_rate"),
                                         GW: (0.9, "error_rate")})
    chain = chain_services(data, PAY)
    assert chain == [(PAY, None), (ORDER, PAY), (GW, ORDER)]
    assert symptoms(data.graph(), PAY) == [GW]
    assert interpretation(data, chain, "error") == "payment-service errors → order-service 5xx → api-gateway 5xx"
    slow = chain_services(SLOW_PAY, PAY, "latency")
    assert interpretation(SLOW_PAY, slow, "latency") == \
        "payment-service slow → order-service slow → api-gateway slow"


def test_counterfactual_from_trace_counts() -> None:
    row = {"requests": 1000, "failed": 51, "failed_with_cause": 47, "with_cause": 47, "mean_ms": 20.0,
           "p95_ms": 60.0, "mean_without_ms": 20.0, "p95_without_ms": 60.0}
    out = counterfactual(row, GW, INV, "error")
    assert (out["error_rate"], out["error_rate_without_cause"], out["share_of_failures_with_cause"]) == \
        (0.051, 0.004, 0.9216)
    assert out["sentence"] == ("of api-gateway's failed requests in the window, 92 % have inventory-service errors "
                               "in their call chain; without them the error rate would have been 0.4 % instead "
                               "of 5.1 %")
    slow = counterfactual({**row, "failed": 0, "failed_with_cause": 0, "p95_without_ms": 12.5}, GW, PAY, "latency")
    assert slow["p95_without_cause_ms"] == 12.5 and "12.5 ms" in slow["sentence"]


def test_event_chain_is_time_ordered_bounded_and_of_the_chain_only() -> None:
    spans = [{"ts_ns": 12 * S, "service": INV, "operation": "GET /stock", "trace_id": "t", "span_id": "s",
              "failed": 1, "failed_child": 0, "duration_ms": 5.0, "self_ms": 5.0, "message": "HTTP 500"},
             {"ts_ns": 11 * S, "service": PAY, "operation": "POST /charge", "trace_id": "t", "span_id": "p",
              "failed": 0, "failed_child": 0, "duration_ms": 40.0, "self_ms": 40.0, "message": ""}]
    logs = [{"ts_ns": 13 * S, "service": GW, "trace_id": "t", "span_id": "g", "severity": "ERROR",
             "body": "request failed with HTTP 502"}]
    events = event_chain(FAILING_INV, [INV, GW], spans, logs, 3, iso)
    assert [(e["time"], e["type"], e["service"]) for e in events] == [
        ("t10", "anomaly", GW), ("t10", "anomaly", INV), ("t12", "span", INV)]
    assert events[2]["detail"].startswith("error started here")
