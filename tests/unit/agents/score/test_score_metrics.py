"""The score stage's metrics: an alert's correlation ID rides on the alert counter as an
OpenMetrics exemplar, which Grafana's Prometheus datasource links to the Explorer."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from agents.score.metrics import ScoreMetrics


def _alert_samples(registry: CollectorRegistry) -> dict[str, object]:
    families = text_string_to_metric_families(generate_latest(registry).decode())
    (alerts,) = [f for f in families if f.name == "ollystack_alerts"]
    return {s.labels["status"]: s for s in alerts.samples if s.name == "ollystack_alerts_total"}


@pytest.mark.parametrize(("correlation_id", "exemplar"), [
    ("order-7f3a9c", {"correlation_id": "order-7f3a9c"}),
    ("", None),
    ("x" * 115, None),  # past OpenMetrics' 128 characters of exemplar labels: counted, no exemplar
], ids=["linked", "no-id", "too-long"])
def test_an_alert_carries_its_correlation_id_as_an_exemplar(correlation_id: str, exemplar: object) -> None:
    registry = CollectorRegistry()
    metrics = ScoreMetrics(registry)
    metrics.count_alert("firing", correlation_id)
    sample = _alert_samples(registry)["firing"]
    assert sample.value == 1  # type: ignore[attr-defined]
    got = sample.exemplar  # type: ignore[attr-defined]
    assert (got.labels if got else None) == exemplar


def test_open_alerts_is_a_gauge_of_the_worker() -> None:
    registry = CollectorRegistry()
    ScoreMetrics(registry).open_alerts.set(3)
    assert registry.get_sample_value("ollystack_open_alerts") == 3
