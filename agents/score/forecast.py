"""Predictive alerts: Holt-Winters forecasts of per-service series crossing a threshold (pure).

Holt's linear method with a damped additive trend (statsmodels ExponentialSmoothing),
plus additive seasonality when the history holds two full seasons. Damping keeps a short
burst from being extrapolated into a breach an hour away; the forecast is compared with
the threshold step by step and the first step past it is the predicted breach.

Two fits: "optimized" (maximum likelihood, about 130 ms a series on this machine; the
API's forecasts) and "fixed" (set smoothing, about 2 ms; the score stage's rounds over
every service, measured with benchmarks/anomaly_detection.py's series)."""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

from core.errors import OllyStackError
from schemas.alerts import PREDICTED_ALERTNAME, Alert

Metric = Literal["latency_p95_ms", "latency_p50_ms", "error_rate", "throughput"]
METRICS: tuple[Metric, ...] = ("latency_p95_ms", "latency_p50_ms", "error_rate", "throughput")
METRIC_TEXT = {"latency_p95_ms": "p95 latency", "latency_p50_ms": "p50 latency", "error_rate": "error rate",
               "throughput": "throughput"}
Fit = Literal["optimized", "fixed"]
MIN_POINTS = 10
NS_PER_MIN = 60 * 1_000_000_000
# The "fixed" fit: a level that follows within a few steps, a slow trend, damped so a
# burst is not extrapolated far (0.98: a trend adds at most ~50 steps of its slope).
_FIXED = {"smoothing_level": 0.5, "smoothing_trend": 0.1, "damping_trend": 0.98}


class ForecastError(OllyStackError):
    """The series cannot be forecast (too short, not finite): permanent for that series."""


@dataclass(frozen=True)
class Forecast:
    values: list[float]  # one per step ahead
    breach_step: int | None  # first step (1-based) at or past the threshold; 0: already past it
    model: str


def forecast_breach(series: Sequence[float], threshold: float, horizon: int, *,
                    direction: Literal["above", "below"] = "above",
                    seasonal_periods: int | None = None, fit: Fit = "optimized") -> Forecast:
    """Forecast ``horizon`` steps of ``series`` and find the first step past ``threshold``.

    Raises ForecastError when the series has fewer than MIN_POINTS values or a value
    that is not finite."""
    values = [float(v) for v in series]
    if len(values) < MIN_POINTS:
        raise ForecastError(f"needs at least {MIN_POINTS} points, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ForecastError("every point must be a finite number")
    def past(value: float) -> bool:
        return value >= threshold if direction == "above" else value <= threshold

    if past(values[-1]):
        return Forecast([], 0, "none")
    if max(values) == min(values):  # flat: nothing to fit, the forecast is the level
        return Forecast([values[-1]] * horizon, 0 if past(values[-1]) else None, "flat")
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = seasonal_periods if seasonal_periods and len(values) >= 2 * seasonal_periods else None
    with warnings.catch_warnings():
        # statsmodels warns about convergence and frequency on short, irregular series;
        # the forecast is still the best fit, and the caller gets the numbers.
        warnings.simplefilter("ignore")
        smoothing = ExponentialSmoothing(values, trend="add", damped_trend=True,
                                         seasonal="add" if seasonal else None, seasonal_periods=seasonal,
                                         initialization_method="estimated" if fit == "optimized" else "heuristic")
        model = smoothing.fit() if fit == "optimized" else smoothing.fit(optimized=False, **_FIXED)
        ahead = [float(v) for v in model.forecast(horizon)]
    breach = next((i + 1 for i, v in enumerate(ahead) if past(v)), None)
    return Forecast(ahead, breach, "holt-winters" if seasonal else "holt-damped")


def minute_series(rows: Iterable[Mapping[str, Any]], start_ns: int, end_ns: int, metric: Metric) -> list[float]:
    """One value per minute in [start, end) from per-minute rows (minute_ns, spans, errors,
    p50_ns, p95_ns); minutes without spans are 0 spans and carry the previous latency forward."""
    by_minute = {int(r["minute_ns"]) // NS_PER_MIN: r for r in rows}
    out: list[float] = []
    last_latency = 0.0
    for minute in range(start_ns // NS_PER_MIN, (end_ns - 1) // NS_PER_MIN + 1):
        row = by_minute.get(minute)
        spans = int(row["spans"]) if row else 0
        if metric == "throughput":
            out.append(float(spans))
        elif metric == "error_rate":
            out.append(int(row["errors"]) / spans if row and spans else 0.0)
        else:
            key = "p50_ns" if metric == "latency_p50_ms" else "p95_ns"
            if row and spans and row[key] is not None:
                last_latency = float(row[key]) / 1_000_000
            out.append(last_latency)
    return out


def predicted_alert(service: str, metric: Metric, threshold: float, forecast: Forecast, now_ns: int,
                    api_url: str, *, tenant: str = "", correlation_id: str = "", step_ns: int = NS_PER_MIN) -> Alert:
    """The alert of a forecast breach (forecast.breach_step >= 1), labelled predicted="true";
    the forecast's steps are ``step_ns`` long."""
    if not forecast.breach_step:
        raise ForecastError("only a future breach makes a predicted alert")
    breach_ns = now_ns + forecast.breach_step * step_ns
    minutes = max(1, round(forecast.breach_step * step_ns / NS_PER_MIN))
    labels = {"alertname": PREDICTED_ALERTNAME, "service": service, "operation": "*", "severity": "warning",
              "predicted": "true", "metric": metric, "tenant": tenant}
    labels = {k: v for k, v in labels.items() if v}
    text = METRIC_TEXT[metric]
    annotations = {
        "summary": f"{service}: {text} forecast to reach {threshold:g} in about {minutes} min",
        "description": (f"{forecast.model} forecast of the {text} crosses {threshold:g} at step "
                        f"{forecast.breach_step} (value {forecast.values[forecast.breach_step - 1]:.4g})"),
        "predicted_breach_at_ms": str(breach_ns // 1_000_000),
        "threshold": f"{threshold:g}",
    }
    if correlation_id:  # an annotation, as on anomaly alerts (agents/alerting.py)
        annotations["correlation_id"] = correlation_id
        annotations["correlation_url"] = f"{api_url}/api/v1/correlate/{quote(correlation_id, safe='')}"
    query = urlencode({"service": service, "metric": metric})
    return Alert(labels, annotations, now_ns, f"{api_url}/api/v1/trends?{query}", "firing", None, now_ns, 0.0)
