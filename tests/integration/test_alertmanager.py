"""The shipped Alertmanager configuration on a real Alertmanager, fed by OllyStack's forwarder.

The alerts come from the score stage's own code path (the alert tracker fed with scored
windows, and a forecast breach), are posted by AlertmanagerForwarder, then routed,
inhibited and rendered by Alertmanager itself (built by ops/tools/fetch). The demo's own
alerts, forwarded by a running worker, are checked in test_web_ui.py."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agents.alerting import AlertPolicy, AlertTracker, WindowSignal
from agents.score.alertmanager import AlertmanagerForwarder
from agents.score.forecast import forecast_breach, predicted_alert
from schemas.alerts import Alert
from sinks.retry import Backoff
from tests.support.alertmanager import SHIPPED, Webhook, alertmanager_process, config_for_test, get_alerts, ready
from tests.support.builders import wait_until
from tests.support.tools import tool_binary

API = "http://olly.test:8080"
POLICY = AlertPolicy(threshold=6.0, critical_threshold=12.0, fire_windows=2, resolve_windows=3, api_url=API)
WINDOW_NS = 60 * 1_000_000_000


def windows(service: str, scores: list[float], first_ns: int) -> list[WindowSignal]:
    return [WindowSignal("", service, "POST /pay", score, "latency_p95", first_ns + i * WINDOW_NS,
                         first_ns + (i + 1) * WINDOW_NS, f"req-{service}-{i}", f"{i:032x}",
                         f"p95 latency 800 ms vs baseline 40 ms (z {score:.1f})") for i, score in enumerate(scores)]


def alerts_of(tracker: AlertTracker, signals: list[WindowSignal]) -> list[Alert]:
    return [alert for s in signals if (alert := tracker.observe(s)) is not None]


def notified(hooks: Webhook, receiver: str, status: str) -> list[dict[str, Any]]:
    """The alerts of the notifications ``receiver`` got with ``status``."""
    return [a for name, body in hooks.notifications if name == receiver and body["status"] == status
            for a in body["alerts"]]


def every_fingerprint(hooks: Webhook) -> set[str]:
    return {a["fingerprint"] for _, body in hooks.notifications for a in body["alerts"]}


@pytest.mark.asyncio
async def test_forwarded_alerts_are_routed_inhibited_and_linked(tmp_path: Path) -> None:
    binary = tool_binary("alertmanager")
    hooks = Webhook()
    config = config_for_test(tmp_path / "config", await hooks.start())
    start_ns = time.time_ns() - 10 * WINDOW_NS
    tracker = AlertTracker(POLICY)
    # payments: two windows far over the critical threshold; checkout: two over the threshold;
    # and a forecast breach of payments (a warning, starting now, as the predictor makes them).
    [critical] = alerts_of(tracker, windows("payments", [15.0, 20.0], start_ns))
    [warning] = alerts_of(tracker, windows("checkout", [7.0, 8.0], start_ns))
    series = [100.0 + 2.0 * i for i in range(60)]
    predicted = predicted_alert("payments", "latency_p95_ms", 250.0, forecast_breach(series, 250.0, 60),
                                time.time_ns(), API, correlation_id="req-payments-forecast")
    assert (critical.labels["severity"], warning.labels["severity"], predicted.labels["severity"]) == (
        "critical", "warning", "warning")
    forwarder = AlertmanagerForwarder("", retries=5, timeout_s=5.0, backoff=Backoff(0.2, 1.0))
    try:
        with alertmanager_process(binary, config, tmp_path) as url:
            forwarder.endpoint = f"{url}/api/v2/alerts"
            await wait_until(lambda: ready(url), 30, "Alertmanager ready")
            # The critical first, as when it fired in an earlier window: an alert that started
            # over group_wait ago is notified at once, before the inhibitor may have seen a
            # critical posted in the same request.
            assert await forwarder.send([critical])
            [paged] = await wait_until(lambda: notified(hooks, "ollystack-critical", "firing"), 30, "the page")
            cid = critical.annotations["correlation_id"]
            assert paged == {
                "status": "firing", "fingerprint": critical.fingerprint, "labels": dict(critical.labels),
                "summary": critical.annotations["summary"], "description": critical.annotations["description"],
                "correlation_id": cid, "explorer_url": f"{API}/correlate/{cid}",
                "grafana_url": f"http://localhost:3000/d/ollystack-correlation/correlation-overview?var-correlation_id={cid}",
                "source_url": critical.generator_url}
            assert await forwarder.send([warning, predicted])

            # The API shows the three with OllyStack's labels and fingerprints; the correlation
            # is an annotation; the forecast warning is inhibited by the payments critical.
            shown = await wait_until(lambda: (found := get_alerts(url)) and len(found) == 3 and found, 30,
                                     "three alerts in GET /api/v2/alerts")
            for alert in (critical, warning, predicted):
                got = shown[alert.fingerprint]
                assert got["labels"] == dict(alert.labels) and "correlation_id" not in got["labels"]
                assert got["annotations"]["correlation_id"] == alert.annotations["correlation_id"]
            assert shown[predicted.fingerprint]["status"] == {"state": "suppressed", "silencedBy": [],
                                                              "inhibitedBy": [critical.fingerprint], "mutedBy": []}
            assert shown[critical.fingerprint]["status"]["state"] == "active"
            assert shown[critical.fingerprint]["receivers"] == [{"name": "ollystack-critical"}]
            assert shown[warning.fingerprint]["receivers"] == [{"name": "ollystack-correlated"}]
            [other] = await wait_until(lambda: notified(hooks, "ollystack-correlated", "firing"), 30, "the warning")
            assert other["fingerprint"] == warning.fingerprint and other["explorer_url"].startswith(f"{API}/correlate/")
            title = next(body["title"] for name, body in hooks.notifications if name == "ollystack-correlated")
            assert title == "FIRING OllyStackAnomaly: checkout, 1 firing"

            # The incident ends: three normal windows resolve it, the page resolves, and the
            # forecast warning it inhibited until then is notified at last.
            assert predicted.fingerprint not in every_fingerprint(hooks), "inhibited, yet notified"
            [resolved] = alerts_of(tracker, windows("payments", [1.0, 1.0, 1.0], start_ns + 2 * WINDOW_NS))
            assert resolved.fingerprint == critical.fingerprint
            assert await forwarder.send([resolved])
            [done] = await wait_until(lambda: notified(hooks, "ollystack-critical", "resolved"), 30, "the resolution")
            assert done["fingerprint"] == critical.fingerprint
            await wait_until(lambda: predicted.fingerprint in every_fingerprint(hooks), 30,
                             "the forecast warning once no longer inhibited")
    finally:
        await forwarder.close()
        await hooks.stop()


def test_amtool_accepts_the_shipped_config() -> None:
    amtool = tool_binary("alertmanager", "amtool")
    done = subprocess.run([str(amtool), "check-config", str(SHIPPED / "alertmanager.yml")],  # noqa: S603
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("labels, receiver", [
    (["alertname=OllyStackAnomaly", "severity=critical", "service=payments"], "ollystack-critical"),
    (["alertname=OllyStackAnomaly", "severity=warning", "service=payments"], "ollystack-correlated"),
    (["alertname=OllyStackPredictedBreach", "severity=warning", "predicted=true"], "ollystack-correlated"),
    (["alertname=OllyStackConsumerLag", "severity=critical"], "ollystack-critical"),
    (["alertname=OllyStackDeadLetters", "severity=warning"], "ollystack-warning"),
], ids=["anomaly-critical", "anomaly-warning", "forecast", "other-critical", "other-warning"])
def test_routes_by_correlation_then_severity(labels: list[str], receiver: str) -> None:
    amtool = tool_binary("alertmanager", "amtool")
    done = subprocess.run([str(amtool), "config", "routes", "test",  # noqa: S603
                           f"--config.file={SHIPPED / 'alertmanager.yml'}", *labels],
                          capture_output=True, text=True, check=False)
    assert done.stdout.strip() == receiver, done.stdout + done.stderr
