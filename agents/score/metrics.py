"""The score stage's Prometheus metrics, on the worker's registry."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.score.features import Key

EXEMPLAR_LABEL = "correlation_id"
EXEMPLAR_MAX_CHARS = 128


class ScoreMetrics:
    """Scores per key (a gauge whose label sets follow the bounded key set), and counters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.score = Gauge("ollystack_anomaly_score", "anomaly score of the last closed window (0..1); "
                           "operation '' is the whole service", ["tenant", "service", "operation"], registry=r)
        self.spans = Counter("ollystack_score_spans", "spans folded into score windows", registry=r)
        self.fold_seconds = Histogram("ollystack_score_fold_seconds", "folding one enriched record into the "
                                      "score windows", registry=r)
        self.late_spans = Counter("ollystack_score_late_spans", "spans of windows already closed, dropped",
                                  registry=r)
        self.future_spans = Counter("ollystack_score_future_spans",
                                    "spans stamped over an hour ahead of the wall clock, dropped", registry=r)
        self.reread_spans = Counter("ollystack_score_reread_spans",
                                    "spans of windows scored before a restart, read again and skipped", registry=r)
        self.windows = Counter("ollystack_score_windows", "key windows scored", registry=r)
        self.alerts = Counter("ollystack_alerts", "alerts published by status", ["status"], registry=r)
        self.open_alerts = Gauge("ollystack_open_alerts", "alerts firing now (anomaly and predicted)",
                                 registry=r)
        self.held = Gauge("ollystack_score_held_records", "records held until their windows are stored",
                          registry=r)
        self.early_acks = Counter("ollystack_score_early_acks",
                                  "records acknowledged before their windows were stored (held-record cap)",
                                  registry=r)
        self.bad_records = Counter("ollystack_score_bad_records", "enriched records the score stage could not read",
                                   registry=r)
        self.store_failures = Counter("ollystack_score_store_failures",
                                      "windows ClickHouse refused as data (logged, skipped)", registry=r)
        self.forward_failures = Counter("ollystack_alertmanager_failures",
                                        "alert batches Alertmanager did not accept after every retry", registry=r)

    def count_alert(self, status: str, correlation_id: str) -> None:
        """Count one published alert; its example request's correlation ID rides along as an
        exemplar (OpenMetrics), which Grafana links to the Correlation Explorer."""
        # OpenMetrics caps an exemplar's labels at 128 characters; a longer ID goes without.
        fits = bool(correlation_id) and len(EXEMPLAR_LABEL) + len(correlation_id) <= EXEMPLAR_MAX_CHARS
        exemplar = {EXEMPLAR_LABEL: correlation_id} if fits else None
        self.alerts.labels(status).inc(exemplar=exemplar)

    def set_scores(self, scores: list[tuple[Key, float]], evicted: list[Key]) -> None:
        for key, value in scores:
            self.score.labels(*key).set(value)
        for key in evicted:
            try:
                self.score.remove(*key)
            except KeyError:
                pass
