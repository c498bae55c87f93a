"""The alert state machine: k high windows fire, m normal windows resolve, one alert per incident."""
from __future__ import annotations

import pytest

from agents.alerting import AlertPolicy, AlertTracker, WindowSignal
from schemas.alerts import fingerprint

POLICY = AlertPolicy(threshold=0.5, critical_threshold=0.9, fire_windows=2, resolve_windows=3,
                     api_url="http://olly:8080")
W = 10_000_000_000


def signal(window: int, score: float, service: str = "checkout", operation: str = "POST /pay",
           cid: str = "req-1") -> WindowSignal:
    return WindowSignal("", service, operation, score, "latency_p95", window * W, (window + 1) * W, cid,
                        "ab" * 16, "p95 latency 400.0 ms vs baseline 80.0 ms (z 20.0)")


def run(scores: list[float]) -> list[tuple[int, str]]:
    tracker = AlertTracker(POLICY)
    events: list[tuple[int, str]] = []
    for window, score in enumerate(scores):
        alert = tracker.observe(signal(window, score))
        if alert is not None:
            events.append((window, alert.status))
    return events


@pytest.mark.parametrize("scores, events", [
    ([0.1] * 10, []),
    ([0.1, 0.7, 0.1, 0.7, 0.1, 0.7], []),
    ([0.1, 0.7, 0.8, 0.1, 0.1, 0.1], [(2, "firing"), (5, "resolved")]),
    ([0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7], [(1, "firing")]),
    ([0.7, 0.7, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1], [(1, "firing"), (7, "resolved")]),
    ([0.7, 0.7, 0.1, 0.1, 0.1, 0.7, 0.7], [(1, "firing"), (4, "resolved"), (6, "firing")]),
    ([0.5, 0.5], [(1, "firing")]),
], ids=["quiet", "flapping-single-windows", "fire-then-resolve", "long-incident-fires-once",
        "relapse-restarts-the-resolve-count", "second-incident-fires-again", "threshold-is-inclusive"])
def test_windows_in_a_row_fire_and_resolve(scores: list[float], events: list[tuple[int, str]]) -> None:
    assert run(scores) == events


def test_resolved_alert_keeps_labels_and_fingerprint_and_spans_the_incident() -> None:
    tracker = AlertTracker(POLICY)
    scores = [0.6, 0.95, 0.7, 0.2, 0.2, 0.2]
    out = [a for w, s in enumerate(scores) if (a := tracker.observe(signal(w, s, cid=f"req-{w}"))) is not None]
    fired, resolved = out
    assert fired.labels == resolved.labels
    assert fired.fingerprint == resolved.fingerprint == fingerprint(fired.labels)
    assert fired.labels == {"alertname": "OllyStackAnomaly", "service": "checkout", "operation": "POST /pay",
                            "severity": "critical"}
    assert (fired.starts_at_ns, resolved.ends_at_ns) == (0, 3 * W)
    body = fired.to_json()
    # The peak window's exemplar, an annotation so that it does not change the fingerprint.
    assert body["annotations"]["correlation_id"] == "req-1"
    assert body["annotations"]["correlation_url"] == "http://olly:8080/api/v1/correlate/req-1"
    assert body["status"] == "firing" and body["endsAt"] == "0001-01-01T00:00:00Z"
    assert body["generatorURL"].startswith("http://olly:8080/api/v1/anomalies?service=checkout")
    assert resolved.to_json()["status"] == "resolved"


def test_services_have_separate_states() -> None:
    tracker = AlertTracker(POLICY)
    fired = []
    for w in range(2):
        for service in ("a", "b"):
            alert = tracker.observe(signal(w, 0.8 if service == "a" else 0.1, service=service))
            fired += [alert.labels["service"]] if alert else []
    assert fired == ["a"] and len(tracker.open_alerts()) == 1


@pytest.mark.parametrize("recent, is_open, then, expected", [
    ([0.1, 0.7], False, 0.7, "firing"),
    ([0.7, 0.1], False, 0.7, None),
    ([0.7, 0.1, 0.1], True, 0.1, "resolved"),
    ([0.1, 0.1, 0.7], True, 0.1, None),
], ids=["pending-run-survives", "broken-run-does-not", "resolving-run-survives", "relapse-survives"])
def test_restore_continues_where_the_stored_windows_left_off(recent: list[float], is_open: bool, then: float,
                                                             expected: str | None) -> None:
    before = AlertTracker(POLICY)
    opened = None
    if is_open:
        before.observe(signal(0, 0.9))
        opened = before.observe(signal(1, 0.9))
    restored = AlertTracker(POLICY)
    restored.restore("", "checkout", [signal(10 + i, s) for i, s in enumerate(recent)], opened)
    alert = restored.observe(signal(10 + len(recent), then))
    assert (alert.status if alert else None) == expected
    if alert is not None and opened is not None:
        assert alert.fingerprint == opened.fingerprint
