"""Predicted alerts of the score stage: each service's window series forecast ahead, an alert
before a rule's threshold is crossed (pure, stateful).

Every ``predict_every_windows`` closed windows, each rule (``latency_p95_ms>500``) is
checked against the last ``predict_history_windows`` service-wide windows of the busiest
``predict_max_series`` services. A forecast crossing the threshold within
``predict_horizon_windows`` fires a predicted alert (label predicted="true"); a later
round that no longer forecasts a crossing ahead resolves it. The windows come from the
same closed windows the anomaly rows hold, so a restart rebuilds the series from them."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from agents.score.config import PredictRule, ScoreConfig
from agents.score.features import WindowFeatures
from agents.score.forecast import MIN_POINTS, ForecastError, Metric, forecast_breach, predicted_alert
from schemas.alerts import Alert

ServiceKey = tuple[str, str]  # (tenant, service)
AlertKey = tuple[str, str, str]  # (tenant, service, metric)


def metric_value(metric: Metric, f: WindowFeatures, previous: float | None) -> float | None:
    """The value of ``metric`` in one window; a window without latency carries the last one."""
    if metric == "throughput":
        return float(f.spans)
    if metric == "error_rate":
        return f.errors / f.spans if f.spans else 0.0
    value = f.p95_ms if metric == "latency_p95_ms" else f.p50_ms
    return previous if value is None else float(value)


class Predictor:
    """Window series per service, and the predicted alerts open for each (service, metric)."""

    def __init__(self, config: ScoreConfig) -> None:
        self.config = config
        self.rules: tuple[PredictRule, ...] = config.predict
        self.series: dict[ServiceKey, deque[WindowFeatures]] = {}
        self.open: dict[AlertKey, Alert] = {}
        self._since_round = 0

    def observe(self, tenant: str, service: str, features: WindowFeatures) -> None:
        """Fold in one closed service-wide window (oldest first)."""
        if not self.rules:
            return
        series = self.series.get((tenant, service))
        if series is None:
            series = self.series[(tenant, service)] = deque(maxlen=self.config.predict_history_windows)
        series.append(features)

    def forget(self, tenant: str, service: str, now_ns: int) -> list[Alert]:
        """Drop a service gone quiet for good; its open predicted alerts resolve."""
        self.series.pop((tenant, service), None)
        return [self._resolve(k, now_ns) for k in [k for k in self.open if k[:2] == (tenant, service)]]

    def close(self, windows: int, now_ns: int) -> list[Alert]:
        """``windows`` more windows closed, the last ending at ``now_ns``: on the round's
        turn, forecast every series and return the predicted alerts fired or resolved."""
        if not self.rules:
            return []
        self._since_round += windows
        if self._since_round < self.config.predict_every_windows:
            return []
        self._since_round = 0
        changed: list[Alert] = []
        busiest = sorted(self.series.items(), key=lambda item: -(item[1][-1].spans if item[1] else 0))
        for (tenant, service), series in busiest[:self.config.predict_max_series]:
            for rule in self.rules:
                alert = self._check(tenant, service, rule, series, now_ns)
                if alert is not None:
                    changed.append(alert)
        return changed

    def _check(self, tenant: str, service: str, rule: PredictRule, series: Iterable[WindowFeatures],
               now_ns: int) -> Alert | None:
        values: list[float] = []
        last: float | None = None
        for features in series:
            last = metric_value(rule.metric, features, last)
            if last is not None:
                values.append(last)
        key = (tenant, service, rule.metric)
        if len(values) < MIN_POINTS:
            return None
        try:
            forecast = forecast_breach(values, rule.threshold, self.config.predict_horizon_windows,
                                       direction=rule.direction, fit="fixed")
        except ForecastError:
            return None
        if forecast.breach_step:
            if key in self.open:
                return None
            alert = predicted_alert(service, rule.metric, rule.threshold, forecast, now_ns,
                                    self.config.api_url.rstrip("/"), tenant=tenant,
                                    step_ns=self.config.window_ns)
            self.open[key] = alert
            return alert
        return self._resolve(key, now_ns) if key in self.open else None

    def _resolve(self, key: AlertKey, now_ns: int) -> Alert:
        return self.open.pop(key).resolve(now_ns, now_ns)

    def restore(self, alerts: Iterable[Alert]) -> None:
        """The predicted alerts still firing, as stored."""
        for alert in alerts:
            metric = alert.labels.get("metric", "")
            self.open[(alert.labels.get("tenant", ""), alert.labels.get("service", ""), metric)] = alert

    def open_alerts(self) -> list[Alert]:
        return list(self.open.values())
