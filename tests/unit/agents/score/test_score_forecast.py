"""Predictive alerts: forecasts that cross a threshold, and the minute series they read."""
from __future__ import annotations

import math

import pytest

from agents.score.forecast import (
    NS_PER_MIN,
    ForecastError,
    forecast_breach,
    minute_series,
    predicted_alert,
)


def ramp(n: int, start: float, step: float, wobble: float = 0.5) -> list[float]:
    return [start + step * i + wobble * math.sin(i) for i in range(n)]


@pytest.mark.parametrize("series, threshold, horizon, breach", [
    (ramp(60, 100.0, 2.0), 250.0, 30, True),
    (ramp(60, 100.0, 0.0), 250.0, 30, False),
    (ramp(60, 100.0, 2.0), 1000.0, 30, False),
    (ramp(60, 300.0, -2.0), 400.0, 30, False),
], ids=["rising-latency-breaches", "flat-latency-does-not", "far-threshold", "falling"])
def test_a_trend_towards_the_threshold_is_a_predicted_breach(series: list[float], threshold: float, horizon: int,
                                                             breach: bool) -> None:
    forecast = forecast_breach(series, threshold, horizon)
    assert len(forecast.values) == horizon
    assert (forecast.breach_step is not None) is breach
    if breach:
        assert 1 <= forecast.breach_step <= horizon  # type: ignore[operator]


def test_already_past_the_threshold_is_not_a_prediction() -> None:
    assert forecast_breach(ramp(20, 300.0, 1.0), 250.0, 10).breach_step == 0


def test_falling_throughput_can_breach_below() -> None:
    forecast = forecast_breach(ramp(60, 600.0, -8.0), 50.0, 30, direction="below")
    assert forecast.breach_step is not None and forecast.breach_step >= 1


@pytest.mark.parametrize("series", [[1.0] * 5, [1.0] * 9 + [math.nan]], ids=["too-short", "not-finite"])
def test_unusable_series_are_refused(series: list[float]) -> None:
    with pytest.raises(ForecastError):
        forecast_breach(series, 10.0, 5)


def test_minute_series_fills_gaps() -> None:
    rows = [{"minute_ns": 0, "spans": 10, "errors": 1, "p95_ns": 5_000_000},
            {"minute_ns": 2 * NS_PER_MIN, "spans": 4, "errors": 2, "p95_ns": 9_000_000}]
    end = 4 * NS_PER_MIN
    assert minute_series(rows, 0, end, "throughput") == [10.0, 0.0, 4.0, 0.0]
    assert minute_series(rows, 0, end, "error_rate") == [0.1, 0.0, 0.5, 0.0]
    assert minute_series(rows, 0, end, "latency_p95_ms") == [5.0, 5.0, 9.0, 9.0]


def test_predicted_alerts_are_labelled_predicted() -> None:
    forecast = forecast_breach(ramp(60, 100.0, 2.0), 250.0, 60)
    alert = predicted_alert("checkout", "latency_p95_ms", 250.0, forecast, 0, "http://olly", correlation_id="req-9")
    assert alert.labels["predicted"] == "true" and alert.labels["alertname"] == "OllyStackPredictedBreach"
    assert alert.to_row()["Predicted"] == 1
    assert alert.annotations["correlation_url"] == "http://olly/api/v1/correlate/req-9"
    assert alert.annotations["correlation_id"] == "req-9" and "correlation_id" not in alert.labels
