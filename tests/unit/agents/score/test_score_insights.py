"""The API's pure builders over anomaly and alert rows: trend direction and ranked insights."""
from __future__ import annotations

from typing import Any

import pytest

from api.presentation.alerts import build_insights, health_json, trend_json

HOUR_NS = 3_600_000_000_000


@pytest.mark.parametrize("values, direction", [
    ([100, 100, 101, 99, 100, 100], "flat"), ([100, 110, 130, 160, 200, 250], "rising"),
    ([250, 200, 160, 130, 110, 100], "falling"), ([0, 0, 0, 1, 2, 3], "rising"), ([5], "unknown"),
], ids=["flat", "rising", "falling", "from-zero", "one-point"])
def test_trend_direction(values: list[float], direction: str) -> None:
    trend = trend_json([(i * HOUR_NS, float(v)) for i, v in enumerate(values)])
    assert trend["direction"] == direction
    if direction == "rising" and values[0]:
        assert trend["slope_per_hour"] > 0 and trend["change_ratio"] == pytest.approx(225 / 105 - 1, abs=1e-4)


def alert(service: str, status: str = "firing", severity: str = "warning", score: str = "0.7") -> dict[str, Any]:
    return {"labels": {"service": service, "severity": severity, "operation": "*"},
            "annotations": {"summary": f"{service} slow", "score": score}, "startsAt": "t0", "endsAt": "t1",
            "generatorURL": "http://olly/x", "fingerprint": f"fp-{service}", "status": status}


def window(service: str, score: float) -> dict[str, Any]:
    return {"service": service, "operation": None, "score": score, "timestamp": "t", "detail": "d",
            "exemplar": {"lookup_url": None}}


def trend(service: str, change: float) -> dict[str, Any]:
    return {"service": service, "metric": "latency_p95_ms", "direction": "rising", "change_ratio": change,
            "slope_per_hour": 1.0}


def test_insights_rank_alerts_then_quiet_anomalies_then_trends() -> None:
    found = build_insights(
        [alert("a"), alert("b", severity="critical"), alert("c", status="resolved")],
        [window("a", 0.9), window("d", 0.6), window("d", 0.8), window("e", 0.55)],
        [trend("f", 0.6), trend("g", 0.2), trend("a", 3.0)], limit=10)
    assert [(i["kind"], i["service"]) for i in found] == [
        ("firing_alert", "b"), ("firing_alert", "a"), ("resolved_alert", "c"), ("anomalous_window", "d"),
        ("anomalous_window", "e"), ("rising_trend", "f")]
    assert found[3]["title"] == "d: score 0.80 without an alert"
    assert len(build_insights([alert("a")], [], [], limit=0)) == 0


@pytest.mark.parametrize("row, status", [
    ({"firing": 1, "critical": 1, "windows": 5, "latest_score": 0.1}, "critical"),
    ({"firing": 1, "critical": 0, "windows": 5, "latest_score": 0.1}, "degraded"),
    ({"firing": 0, "critical": 0, "windows": 5, "latest_score": 0.7}, "degraded"),
    ({"firing": None, "critical": None, "windows": 5, "latest_score": 0.1}, "healthy"),
    ({"firing": 1, "critical": 0, "windows": None, "latest_score": None}, "degraded"),
    ({"firing": 0, "critical": 0, "windows": 0, "latest_score": None}, "unknown"),
], ids=["critical-alert", "alert", "anomalous-now", "quiet", "alert-without-windows", "nothing-scored"])
def test_health_status(row: dict[str, Any], status: str) -> None:
    full = {"service": "s", "spans": 10, "errors": 1, "latest_ns": None, "max_score": None, "latest_p95_ms": None,
            **row}
    assert health_json(full, 0.5)["status"] == status
