"""The demo's random choices (seeded, fault flags) and its command-line flags."""
from __future__ import annotations

import random

import pytest

from pipeline.demo import (
    SLOW_EXTRA_MS,
    Faults,
    FaultWindow,
    demo_main,
    plan_flow,
    run_demo,
    service_name,
)


def _plans(seed: int, faults: Faults, n: int = 2000) -> list:
    rng = random.Random(seed)
    return [plan_flow(rng, faults) for _ in range(n)]


def test_same_seed_same_flows() -> None:
    assert _plans(3, Faults(), 50) == _plans(3, Faults(), 50)
    assert _plans(3, Faults(), 50) != _plans(4, Faults(), 50)


@pytest.mark.parametrize(("faults", "service", "low", "high"), [
    pytest.param(Faults(), "payment-service", 0.03, 0.07, id="payment-5pct"),
    pytest.param(Faults(), "inventory-service", 0.015, 0.045, id="inventory-3pct"),
    pytest.param(Faults(), "order-service", 0.0, 0.0, id="order-never"),
    pytest.param(Faults(fail={"payment-service": 0.5}), "payment-service", 0.45, 0.55, id="fail-payment-half"),
])
def test_failure_rates(faults: Faults, service: str, low: float, high: float) -> None:
    plans = _plans(1, faults)
    rate = sum(service in p.failed for p in plans) / len(plans)
    assert low <= rate <= high


def test_slow_service_and_half_the_flows_with_a_correlation_id() -> None:
    plans = _plans(2, Faults(slow=frozenset({"inventory-service"})))
    assert min(p.latency_ms["inventory-service"] for p in plans) >= SLOW_EXTRA_MS
    assert max(p.latency_ms["order-service"] for p in plans) < SLOW_EXTRA_MS
    share = sum(p.with_correlation_id for p in plans) / len(plans)
    assert 0.45 <= share <= 0.55


def test_a_fault_window_gives_a_baseline_the_incident_and_a_recovery() -> None:
    slow = Faults(slow=frozenset({"payment-service"}))
    window = FaultWindow(slow, after_s=60.0, for_s=30.0)
    assert [window(t) for t in (0.0, 59.9, 60.0, 89.9, 90.0, 500.0)] == [Faults(), Faults(), slow, slow,
                                                                          Faults(), Faults()]
    assert FaultWindow(slow)(0.0) == slow and FaultWindow(slow, 5.0)(1e9) == slow


@pytest.mark.parametrize(("name", "expected"), [
    ("inventory", "inventory-service"), ("payment-service", "payment-service"), ("api-gateway", "api-gateway"),
])
def test_service_names(name: str, expected: str) -> None:
    assert service_name(name) == expected


@pytest.mark.parametrize("argv", [
    ["--fail", "payment=2"], ["--fail", "payment"], ["--fail", "nosuch=0.1"], ["--slow", "nosuch"],
    ["--protocol", "udp"], ["--rate", "0"], ["--fault-after", "-1"], ["--fault-for", "0"],
], ids=["probability-over-1", "no-probability", "unknown-fail-service", "unknown-slow-service",
        "bad-protocol", "zero-rate", "negative-fault-start", "zero-fault-length"])
def test_bad_flags_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        demo_main(argv)
    assert info.value.code == 2
    assert "usage: ollystack demo" in capsys.readouterr().err


@pytest.mark.parametrize("extra_ms", [20.0, 80.0, 300.0], ids=["slow-20ms", "slow-80ms", "slow-300ms"])
def test_a_slow_service_takes_its_own_extra_latency(extra_ms: float) -> None:
    faults = Faults(slow=frozenset({"payment-service"}), slow_ms={"payment-service": extra_ms})
    plans = _plans(4, faults, 500)
    assert min(p.latency_ms["payment-service"] for p in plans) >= extra_ms
    assert max(p.latency_ms["payment-service"] for p in plans) <= 1.3 * extra_ms + 60
    assert Faults(slow_ms={"payment-service": extra_ms}).extra_ms("payment-service") == 0.0


@pytest.mark.parametrize(("kwargs"), [{"speedup": 10.0}, {"speedup": 1.0, "duration_s": 5.0}],
                         ids=["no-duration", "no-speedup"])
def test_fast_forward_needs_a_duration_and_a_speedup(kwargs: dict[str, float]) -> None:
    args = {"duration_s": None, **kwargs}
    with pytest.raises(ValueError, match="speedup"):
        run_demo("http://127.0.0.1:1", "http://127.0.0.1:1", "grpc", 1.0, args.pop("duration_s"), **args)
