"""Predicted alerts of the score stage: a trend towards a rule's threshold fires one alert
ahead of the crossing, a trend that levels off resolves it, and a restart keeps it."""
from __future__ import annotations

import math

import pytest

from agents.score.config import ScoreConfig
from agents.score.features import WindowFeatures
from agents.score.predict import Predictor, metric_value

WINDOW_NS = 60 * 1_000_000_000
CONFIG = ScoreConfig.of(predict_rules=("latency_p95_ms>500", "throughput<20"), predict_every_windows=5,
                        predict_history_windows=60, predict_horizon_windows=30, api_url="http://olly.test")


def window(p95_ms: float | None, spans: int = 100, errors: int = 0) -> WindowFeatures:
    return WindowFeatures(spans, errors, None if p95_ms is None else p95_ms / 2, p95_ms)


def run(predictor: Predictor, latencies: list[float], first: int = 0) -> list[tuple[int, str, str]]:
    """Close one window per latency; (window, status, metric) of each predicted alert."""
    out = []
    for i, p95 in enumerate(latencies, start=first):
        predictor.observe("acme", "checkout", window(p95 + 3 * math.sin(i)))
        for alert in predictor.close(1, (i + 1) * WINDOW_NS):
            out.append((i, alert.status, alert.labels["metric"]))
    return out


def test_a_rising_latency_fires_before_the_threshold_and_resolves_when_it_levels_off() -> None:
    predictor = Predictor(CONFIG)
    rising = [90 + 6 * i for i in range(60)]  # 444 ms at window 59: 500 ms is ~10 windows ahead
    fired = run(predictor, rising)
    assert [(status, metric) for _, status, metric in fired] == [("firing", "latency_p95_ms")]
    assert rising[fired[0][0]] < 500  # ahead of the crossing
    alert = predictor.open_alerts()[0]
    assert alert.labels == {"alertname": "OllyStackPredictedBreach", "service": "checkout", "operation": "*",
                            "severity": "warning", "predicted": "true", "metric": "latency_p95_ms", "tenant": "acme"}
    assert alert.to_row()["Predicted"] == 1
    assert int(alert.annotations["predicted_breach_at_ms"]) > fired[0][0] * 60_000
    flat = run(predictor, [rising[-1]] * 40, first=60)
    assert [(status, metric) for _, status, metric in flat] == [("resolved", "latency_p95_ms")]
    assert predictor.open_alerts() == []


def test_a_steady_service_and_a_short_history_predict_nothing() -> None:
    steady = Predictor(CONFIG)
    assert run(steady, [120.0] * 80) == []
    short = Predictor(CONFIG)
    assert run(short, [100 + 50 * i for i in range(8)]) == []  # under MIN_POINTS windows


def test_a_restart_keeps_the_open_alert_instead_of_firing_again() -> None:
    before = Predictor(CONFIG)
    rising = [90 + 6 * i for i in range(60)]
    assert run(before, rising) != []
    after = Predictor(CONFIG)
    after.restore(before.open_alerts())
    for p95 in rising:
        after.observe("acme", "checkout", window(p95))
    assert run(after, [450.0 + 6 * i for i in range(5)], first=60) == []
    assert after.open_alerts() == before.open_alerts()


def test_no_rules_no_work() -> None:
    predictor = Predictor(ScoreConfig())
    predictor.observe("", "svc", window(100.0))
    assert predictor.series == {} and predictor.close(100, WINDOW_NS) == []


@pytest.mark.parametrize(("metric", "features", "previous", "expected"), [
    ("throughput", window(10.0, spans=42), None, 42.0),
    ("error_rate", window(10.0, spans=50, errors=5), None, 0.1),
    ("error_rate", window(None, spans=0), None, 0.0),
    ("latency_p95_ms", window(None, spans=0), 80.0, 80.0),
    ("latency_p50_ms", window(90.0), None, 45.0),
], ids=["throughput", "error-rate", "no-spans-no-errors", "latency-carried", "p50"])
def test_window_values(metric: str, features: WindowFeatures, previous: float | None, expected: float) -> None:
    assert metric_value(metric, features, previous) == pytest.approx(expected)  # type: ignore[arg-type]
