"""The web UI in real headless Chromium, on data that went through the real SDK, gateway,
broker, worker and chDB (`ollystack demo` with an injected fault), served by the API over a
real HTTP server: the explorer, the recent list, the search box, alerts and sign-in. The
worker also forwards the demo's alerts to a real Alertmanager with the shipped config, which
is checked to list, route and resolve them as notified to a webhook.

Each test saves a screenshot (PNG) of its page under its own tmp folder; run
`pytest tests/integration/test_web_ui.py --basetemp=/tmp/ui-shots` to keep them in one place."""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from agents.score.config import ScoreConfig
from api.server import ApiServer
from api.ui import ui_built
from core.settings import ApiSettings, ClickHouseSettings, OtlpSettings
from pipeline.demo import DemoResult, Faults, run_demo
from sinks.warehouse import Warehouse
from tests.support.alertmanager import Webhook, get_alerts, running_alertmanager
from tests.support.browser import checked_page, chromium, chromium_path
from tests.support.builders import settings_for, wait_until, with_stage
from tests.support.pipeline import running_pipeline
from tests.support.warehouses import migrated_warehouse

pytestmark = pytest.mark.asyncio(loop_scope="module")
# Short score windows so a baseline is learned in seconds; one anomalous window fires. The
# fault stays an anomaly for 10 minutes of windows (not a new level after one), so its alert
# stays open until the last test turns the fault off.
CONFIG = ScoreConfig(window_s=2, lateness_s=2.0, idle_partition_s=10.0, history_windows=20, min_history_windows=4,
                     min_spans=10, fire_windows=1, max_frozen_windows=300, api_url="http://olly.test:8080")
RATE = 20.0
FAILING = "inventory-service"
FAULT = Faults(fail={FAILING: 0.6})
ADMIN_KEY = "ui-test-admin-key"


@dataclass
class Stack:
    warehouse: Warehouse
    api: str  # the open API's base URL
    keyed_api: str  # the same data behind API keys
    browser: Any
    faults_on: threading.Event
    demo: asyncio.Task[DemoResult]
    alertmanager: str  # the URL of the Alertmanager the worker forwards its alerts to
    hooks: Webhook  # the notifications Alertmanager sent

    async def aget(self, path: str, **params: Any) -> Any:
        # The API serves from this test's loop: a blocking call here would stall it.
        return await asyncio.to_thread(self.get, path, **params)

    async def failing(self) -> dict[str, Any]:
        found: dict[str, Any] = await wait_until(self.failing_correlation, 60, "a failing correlation of the fault")
        return found

    def firing(self) -> list[dict[str, Any]]:
        alerts = self.get("/api/v1/alerts", status="firing", service=FAILING)["alerts"]
        return [a for a in alerts if a["status"] == "firing"]

    def get_or_none(self, path: str) -> Any:
        """GET ``path``; None while it answers 404."""
        response = httpx.get(self.api + path, timeout=30)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.api + path, params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def windows_since(self, at_ns: int) -> int:
        """Service-wide windows of the failing service stored from the one holding ``at_ns``."""
        return self.count("SELECT count() AS n FROM {db}.ollystack_anomalies FINAL WHERE SpanName = '' "
                          f"AND ServiceName = '{FAILING}' AND Timestamp >= fromUnixTimestamp64Nano("
                          f"{at_ns - at_ns % CONFIG.window_ns})")

    def count(self, sql: str) -> int:
        return int(self.warehouse.query(sql.format(db=self.warehouse.database))[0]["n"])

    def failing_correlation(self) -> dict[str, Any] | None:
        """A failing correlation of the fault with several services, as the API lists it."""
        listed = self.get("/api/v1/correlations", sort="failing", has_errors="true", limit=50)["correlations"]
        return next((c for c in listed if FAILING in c["services"] and len(c["services"]) >= 3), None)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(kafka_bootstrap: str, chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The pipeline with its score stage forwarding to Alertmanager, the demo (steady until a
    baseline is learned, then with inventory-service failing), the API open and behind keys,
    and Chromium."""
    chromium_path()
    if not ui_built():
        pytest.fail("the web UI is not built: run `make ui` (make test does)")
    name = "webui" + uuid.uuid4().hex[:8]
    async with running_alertmanager(tmp_path_factory.mktemp("alertmanager")) as (am_url, hooks):
        with migrated_warehouse(ClickHouseSettings(database=name), chdb_dir) as warehouse:
            score = CONFIG.model_copy(update={"alertmanager_url": am_url})
            settings = with_stage(settings_for(name, tmp_path_factory.mktemp("webui"), name), score=score).model_copy(
                update={"otlp": OtlpSettings(grpc_port=0, http_port=0), "api": ApiSettings(port=0)})
            keyed = settings.model_copy(update={"api": ApiSettings.model_validate(
                {"port": 0, "keys": f"{ADMIN_KEY}=ops:admin"})})
            async with running_pipeline(settings, kafka_bootstrap, warehouse, name) as gateway:
                faults_on, stop = threading.Event(), threading.Event()
                demo = asyncio.create_task(asyncio.to_thread(
                    run_demo, f"http://127.0.0.1:{gateway.grpc_port}", f"http://127.0.0.1:{gateway.http_port}",
                    "grpc", RATE, None, lambda _: FAULT if faults_on.is_set() else Faults(), seed=7, stop=stop))
                servers = [ApiServer(settings, warehouse), ApiServer(keyed, warehouse)]
                try:
                    for server in servers:
                        await server.start()
                    async with chromium() as browser:
                        stack = Stack(warehouse, f"http://127.0.0.1:{servers[0].port}",
                                      f"http://127.0.0.1:{servers[1].port}", browser, faults_on, demo, am_url, hooks)
                        # The fault starts once every service's baseline is learned.
                        await wait_until(lambda: stack.count(
                            "SELECT count() AS n FROM {db}.ollystack_anomalies FINAL WHERE SpanName = '' "
                            f"AND Warming = 0 AND ServiceName = '{FAILING}'") > 0, 90,
                            f"a learned baseline of {FAILING}")
                        faults_on.set()
                        yield stack
                finally:
                    stop.set()
                    result = await demo
                    for server in servers:
                        await server.stop()
                    assert result.spans_not_sent == 0


def shot(tmp_path: Path, name: str) -> Path:
    return tmp_path / f"{name}.png"


@pytest.mark.timeout(240)
async def test_an_alert_appears_on_the_alerts_page_while_the_fault_is_on(stack: Stack, tmp_path: Path) -> None:
    async with checked_page(stack.browser, shot(tmp_path, "alerts")) as (page, _):
        # The fault has just started: the alert normally fires after the page is open, and
        # then it can only have come over the event stream.
        fired_before = await asyncio.to_thread(stack.firing)
        await page.goto(stack.api + "/alerts")
        await page.wait_for_selector("#live.on")
        firing = page.locator("#alert-list li.alert.firing", has_text=FAILING)
        await firing.first.wait_for(timeout=60_000)
        assert stack.faults_on.is_set() and not stack.demo.done()
        if not fired_before:
            assert await firing.first.get_attribute("data-via") == "stream"
        link = firing.first.locator("a", has_text="Open correlation")
        assert re.fullmatch(r"/correlate/.+", await link.get_attribute("href") or "")


async def test_alertmanager_lists_the_demos_alert_and_notifies_its_route_with_the_explorer_link(
        stack: Stack) -> None:
    # The alert as the score stage published it (the API lists the stored messages).
    [alert] = await wait_until(stack.firing, 60, f"the firing alert of {FAILING}")
    labels, annotations, cid = alert["labels"], alert["annotations"], alert["annotations"]["correlation_id"]
    # The operation is that of the window that fired ("*": the service as a whole).
    assert labels == {"alertname": "OllyStackAnomaly", "service": FAILING, "operation": labels["operation"],
                      "severity": labels["severity"]} and labels["severity"] in ("warning", "critical")
    # The shipped routes: OllyStack's critical anomalies page, the others go to the correlated receiver.
    receiver = "ollystack-critical" if labels["severity"] == "critical" else "ollystack-correlated"
    shown = await wait_until(lambda: get_alerts(stack.alertmanager).get(alert["fingerprint"]), 30,
                             "the alert in Alertmanager's GET /api/v2/alerts")
    assert shown["labels"] == labels and "correlation_id" not in shown["labels"]
    assert shown["annotations"] == annotations
    assert shown["status"]["state"] == "active" and shown["receivers"] == [{"name": receiver}]
    [(notified_to, notified)] = await wait_until(lambda: stack.hooks.alerts_of(alert["fingerprint"], "firing")[:1],
                                                 30, "the firing notification")
    assert notified_to == receiver
    assert notified == {
        "status": "firing", "fingerprint": alert["fingerprint"], "labels": labels,
        "summary": annotations["summary"], "description": annotations["description"], "correlation_id": cid,
        "explorer_url": f"{CONFIG.api_url}/correlate/{quote(cid, safe='')}",
        "grafana_url": "http://localhost:3000/d/ollystack-correlation/correlation-overview"
                       f"?var-correlation_id={quote(cid, safe='')}",
        "source_url": alert["generatorURL"]}
    # The link's correlation is the fault's request, as the API (and its Explorer page) shows it.
    context = await wait_until(lambda: stack.get_or_none(f"/api/v1/correlate/{quote(cid, safe='')}"), 30,
                               "the alert's correlation in the API")
    assert FAILING in {s["name"] for s in context["services"]} and context["summary"]["error_count"] > 0


async def test_the_explorer_shows_the_apis_counts_every_span_and_service(stack: Stack, tmp_path: Path) -> None:
    cid = (await stack.failing())["correlation_id"]
    context = await stack.aget(f"/api/v1/correlate/{quote(cid, safe='')}")
    summary = context["summary"]
    spans = [s for t in context["traces"] for s in t["spans"]]
    async with checked_page(stack.browser, shot(tmp_path, "explorer")) as (page, _):
        await page.goto(f"{stack.api}/correlate/{quote(cid, safe='')}")
        await page.wait_for_selector("#summary")
        cards = {key: (await page.locator(f'[data-card="{key}"] .card-value').inner_text()).replace(",", "")
                 for key in ("services", "spans", "logs", "metrics", "errors")}
        assert cards == {"services": str(summary["service_count"]), "spans": str(summary["total_spans"]),
                         "logs": str(summary["total_logs"]), "metrics": str(summary["total_metrics"]),
                         "errors": str(summary["error_count"])}
        errors_card = await page.locator('[data-card="errors"]').get_attribute("class") or ""
        assert summary["error_count"] > 0 and "bad" in errors_card.split()
        # One bar per span; the failing spans are the rows marked as errors.
        assert await page.locator("#waterfall .wf-span").count() == len(spans)
        assert await page.locator("#waterfall .wf-span .wf-bar").count() == len(spans)
        marked = await page.locator('#waterfall .wf-span[data-error="true"]').evaluate_all(
            "rows => rows.map(r => r.dataset.spanId)")
        assert sorted(marked) == sorted(s["span_id"] for s in spans if s["error"]) and marked
        # The service flow graph drew every service of the request.
        await page.wait_for_function("document.querySelector('#flow').dataset.nodes !== undefined")
        drawn = json.loads(await page.locator("#flow").get_attribute("data-nodes") or "[]")
        assert drawn == sorted(s["name"] for s in context["services"])
        chips = await page.locator("#flow-services .chip").evaluate_all("chips => chips.map(c => c.dataset.service)")
        assert sorted(chips) == drawn
        # The analysis outlines the critical path; a click shows a span's attributes.
        await page.wait_for_selector("#waterfall .wf-span.critical")
        failing = next(s for s in spans if s["error"])
        await page.locator(f'#waterfall .wf-span[data-span-id="{failing["span_id"]}"]').click()
        details = page.locator("#span-details")
        await details.wait_for()
        assert (await details.locator("h3").inner_text()) == failing["name"]
        assert await details.locator("table.attrs tr").count() >= len(failing["attributes"])
        # Hover shows a span's details; a drag across the bars zooms into that range.
        await page.locator(f'#waterfall .wf-span[data-span-id="{failing["span_id"]}"] .wf-bar').hover()
        tooltip = page.locator("#tooltip")
        assert await tooltip.is_visible() and failing["name"] in await tooltip.inner_text()
        ticks = page.locator("#waterfall .wf-axis .wf-tick")
        full_end = await ticks.last.inner_text()
        track = await page.locator("#waterfall .wf-body .wf-track").first.bounding_box()
        assert track is not None
        await page.mouse.move(track["x"] + track["width"] * 0.1, track["y"] + 5)
        await page.mouse.down()
        await page.mouse.move(track["x"] + track["width"] * 0.5, track["y"] + 5, steps=5)
        await page.mouse.up()
        await page.wait_for_selector("#waterfall button:not([disabled])", state="attached")
        assert await ticks.last.inner_text() != full_end
        await page.click("#waterfall button:has-text('Reset zoom')")
        assert await ticks.last.inner_text() == full_end
        # Insights: the root cause the analysis computed.
        analysis = await asyncio.to_thread(lambda: httpx.post(
            stack.api + "/api/v1/rca", json={"correlation_id": cid}, timeout=30).json())
        await page.click('[data-tab="insights"]')
        cause = await page.locator('#insights [data-card="root-cause"] .card-value').inner_text()
        assert cause == f'{analysis["root_cause"]["service"]} · {analysis["root_cause"]["operation"]}'
        await page.screenshot(path=str(shot(tmp_path, "explorer-insights")), full_page=True)
        await page.click('[data-tab="traces"]')
        await page.mouse.move(0, 0)


async def test_the_search_box_finds_a_correlation_by_id_and_by_trace(stack: Stack, tmp_path: Path) -> None:
    cid = (await stack.failing())["correlation_id"]
    trace_id = (await stack.aget(f"/api/v1/correlate/{quote(cid, safe='')}"))["traces"][0]["trace_id"]
    async with checked_page(stack.browser, shot(tmp_path, "search")) as (page, _):
        await page.goto(stack.api + "/dashboard")
        await page.wait_for_selector("#overview")
        for text in (cid, trace_id):
            await page.fill("#search-input", text)
            await page.press("#search-input", "Enter")
            await page.wait_for_url(f"**/correlate/{quote(cid, safe='')}")
            await page.wait_for_selector("#summary")
            assert await page.locator("#correlation-id").inner_text() == cid
            await page.goto(stack.api + "/dashboard")
            await page.wait_for_selector("#overview")


async def test_the_recent_list_shows_the_failing_correlation(stack: Stack, tmp_path: Path) -> None:
    cid = (await stack.failing())["correlation_id"]
    async with checked_page(stack.browser, shot(tmp_path, "correlations")) as (page, _):
        await page.goto(stack.api + f"/correlations?sort=failing&errors=true&service={FAILING}")
        row = page.locator(f'#correlation-list tr[data-correlation-id="{cid}"]')
        await row.wait_for()
        assert int(await row.locator("td").last.inner_text()) > 0
        assert await page.locator("#correlation-list tbody tr:not(.error)").count() == 0
        await page.screenshot(path=str(shot(tmp_path, "correlations-list")))
        await row.locator("a").click()
        await page.wait_for_selector("#summary")
        assert await page.locator("#correlation-id").inner_text() == cid


async def test_the_service_map_and_the_dashboard_draw_every_service(stack: Stack, tmp_path: Path) -> None:
    services = {s["service"] for s in (await stack.aget("/api/v1/services"))["services"]}
    async with checked_page(stack.browser, shot(tmp_path, "services")) as (page, _):
        await page.goto(stack.api + "/services")
        await page.wait_for_function("document.querySelector('#service-map')?.dataset.nodes !== undefined")
        drawn = set(json.loads(await page.locator("#service-map").get_attribute("data-nodes") or "[]"))
        assert services <= drawn
        await page.screenshot(path=str(shot(tmp_path, "service-map")))
        await page.locator("#service-table tr", has_text=FAILING).locator("a").click()
        await page.wait_for_url(f"**/correlations?sort=failing&errors=true&range=1h&service={FAILING}")
        await page.wait_for_selector("#correlation-list")
        rows = await page.locator("#correlation-list tbody tr").evaluate_all("rows => rows.map(r => r.className)")
        assert rows and all("error" in r.split() for r in rows)
    async with checked_page(stack.browser, shot(tmp_path, "dashboard")) as (page, _):
        await page.goto(stack.api + "/dashboard")
        await page.wait_for_selector("#overview")
        assert await page.locator('[data-card="services"] .card-value').inner_text() == str(len(services))
        await page.wait_for_selector(".chart .uplot")


async def test_with_auth_on_a_page_without_a_key_shows_the_sign_in_prompt(stack: Stack, tmp_path: Path) -> None:
    cid = (await stack.failing())["correlation_id"]
    async with checked_page(stack.browser, shot(tmp_path, "signin")) as (page, problems):
        await page.goto(f"{stack.keyed_api}/correlate/{quote(cid, safe='')}")
        await page.wait_for_selector("#signin")
        assert await page.locator("#summary").count() == 0
        assert not [url for url in problems.requests if "/api/" in url]
        await page.screenshot(path=str(shot(tmp_path, "signin-prompt")))
        await page.fill("#signin input[name=key]", ADMIN_KEY)
        await page.press("#signin input[name=key]", "Enter")
        await page.wait_for_selector("#summary")
        assert await page.locator("#correlation-id").inner_text() == cid


# Last in the module: the fault ends here, the other tests need it on.
@pytest.mark.timeout(240)
async def test_the_demos_alert_resolves_in_alertmanager_once_the_fault_is_off(stack: Stack) -> None:
    [alert] = await wait_until(stack.firing, 60, f"the firing alert of {FAILING}")
    [(receiver, _)] = await wait_until(lambda: stack.hooks.alerts_of(alert["fingerprint"], "firing")[:1], 30,
                                       "the firing notification")
    stack.faults_on.clear()
    recovered = time.time_ns()
    # The waits follow event time (the windows stored), not the wall clock: on a busy
    # machine the pipeline runs behind. resolve_windows normal windows resolve; the window
    # the change falls in is partial (+1), and one noisy window is allowed for (+1).
    await wait_until(lambda: stack.windows_since(recovered) >= CONFIG.resolve_windows + 2, 120,
                     "the recovery's windows stored")
    [(notified_to, notified)] = await wait_until(
        lambda: stack.hooks.alerts_of(alert["fingerprint"], "resolved")[:1], 30,
        lambda: f"the resolved notification (published: {stack.get('/api/v1/alerts', service=FAILING)})")
    assert notified_to == receiver and notified["labels"] == alert["labels"]
    assert notified["correlation_id"] == alert["annotations"]["correlation_id"]
