"""The anomaly and alert routes on real chDB rows written by the score engine: lists, the
event stream, detection and prediction on stored spans, trends, health and insights."""
from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from agents.score.config import ScoreConfig
from agents.score.logic import ScoreEngine
from api.app import create_app
from api.routes import alerts as alert_routes
from core.settings import Settings
from schemas.tables import ALERTS_TABLE, ANOMALIES_TABLE
from sinks.rollups import refresh_rollups
from sinks.warehouse import Warehouse
from tests.support.score_points import span_row, spans_table

pytestmark = pytest.mark.asyncio
T0 = 1_763_856_000_000_000_000  # 2025-11-23T00:00:00Z
MIN = 60 * 1_000_000_000
MS = 1_000_000
WINDOWS = 60
CLOCK = T0 + WINDOWS * MIN
CONFIG = ScoreConfig(window_s=60)


def latency_ms(service: str, w: int) -> float:
    if service == "checkout":  # a ramp over the last 40 minutes
        return 40.0 * (1 + 0.06 * max(0, w - 20))
    return 40.0


def points(w: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for service in ("checkout", "payments", "catalog"):
        errors = 0.5 if service == "payments" and 40 <= w <= 45 else 0.01
        for i in range(40):
            failed = rng.random() < errors
            duration = int(rng.lognormvariate(0, 0.25) * latency_ms(service, w) * MS)
            out.append(span_row(T0 + w * MIN + i * MIN // 40, service, ("GET /a", "POST /b")[i % 2], duration,
                                failed, f"req-{service}-{w}-{i}", f"{w:016x}{i:016x}"))
    return out


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {key: [row[key] for row in rows] for key in rows[0]}


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    rng = random.Random(5)
    engine = ScoreEngine(CONFIG)
    spans, rows, alerts = [], [], []
    for w in range(WINDOWS):
        batch = points(w, rng)
        spans += batch
        engine.add_table(0, spans_table(batch), 0.0, CLOCK)
        closed = engine.close(T0 // CONFIG.window_ns + w)
        rows += closed.rows
        alerts += closed.alerts
    return {"spans": spans, "rows": rows, "alerts": alerts}


@pytest_asyncio.fixture
async def client(warehouse: Warehouse, scenario: dict[str, Any], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    spans = [{**span, "SpanId": f"{n:016x}", "ParentSpanId": "", "SpanKind": "Server"}
             for n, span in enumerate(scenario["spans"])]
    warehouse.insert("otel_traces", columns(spans))
    refresh_rollups(warehouse, margin_s=0, until_done=True)  # trends and detection read the rollups
    warehouse.insert(ANOMALIES_TABLE, columns(scenario["rows"]))
    warehouse.insert(ALERTS_TABLE, columns([a.to_row() for a in scenario["alerts"]]))
    settings = Settings.model_validate({"data_dir": str(tmp_path), "clickhouse": {"database": warehouse.database}})
    app = create_app(settings, warehouse, clock_ns=lambda: CLOCK)
    app.router.routes.extend(alert_routes.ROUTES)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://olly.test") as c:
        yield c


async def get(client: httpx.AsyncClient, url: str, expect: int = 200, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == expect, response.text
    return response.json()


async def post(client: httpx.AsyncClient, url: str, body: Any, expect: int = 200) -> Any:
    response = await client.post(url, content=body if isinstance(body, bytes) else orjson.dumps(body))
    assert response.status_code == expect, response.text
    return response.json()


async def test_the_scenario_alerts_the_ramp_and_the_burst(scenario: dict[str, Any]) -> None:
    fired = sorted((a.labels["service"], a.status) for a in scenario["alerts"])
    assert fired == [("checkout", "firing"), ("payments", "firing"), ("payments", "resolved")]


async def test_anomalies_list_filters_and_links_exemplars(client: httpx.AsyncClient) -> None:
    threshold = CONFIG.threshold  # scores are surprises (-log10 p); anomalous from the threshold on
    found = await get(client, "/api/v1/anomalies", service="payments", min_score=str(threshold), limit="5")
    assert found["anomalies"] and all(a["score"] >= threshold and a["service"] == "payments"
                                      for a in found["anomalies"])
    first = found["anomalies"][0]
    assert first["reason"] == "error_rate" and first["exemplar"]["lookup_url"].startswith(
        "http://olly.test/api/v1/correlate/req-payments-")
    assert set(first["z"]) == {"latency_p50", "latency_p95", "error_rate", "throughput"}
    ops = await get(client, "/api/v1/anomalies", service="catalog", operation="GET /a", limit="1000")
    assert len(ops["anomalies"]) == WINDOWS and {a["operation"] for a in ops["anomalies"]} == {"GET /a"}


@pytest.mark.parametrize("params, parameter", [
    ({"min_score": "-1"}, "min_score"), ({"service": "' OR 1=1 --"}, "service"), ({"bogus": "1"}, "bogus"),
    ({"start": "yesterday"}, "start"), ({"limit": "0"}, "limit"),
], ids=["negative-score", "injection", "unknown", "bad-time", "zero-limit"])
async def test_bad_anomaly_parameters_are_named(client: httpx.AsyncClient, params: dict[str, str],
                                                parameter: str) -> None:
    assert (await get(client, "/api/v1/anomalies", 400, **params))["parameter"] == parameter


async def test_alerts_list_shows_each_alerts_latest_message(client: httpx.AsyncClient) -> None:
    firing = (await get(client, "/api/v1/alerts", status="firing"))["alerts"]
    assert [(a["labels"]["service"], a["status"]) for a in firing] == [("checkout", "firing")]
    assert set(firing[0]) >= {"labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    resolved = (await get(client, "/api/v1/alerts", status="resolved", service="payments"))["alerts"]
    assert len(resolved) == 1 and resolved[0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert (await get(client, "/api/v1/alerts", predicted="true"))["alerts"] == []
    assert (await get(client, "/api/v1/alerts", 400, status="open"))["parameter"] == "status"


async def test_the_stream_sends_stored_alerts_as_events(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/alerts/stream", params={"since": "0", "limit": "3"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if "event: alert" in block]
    payloads = [orjson.loads(line[len("data: "):]) for block in events for line in block.splitlines()
                if line.startswith("data: ")]
    assert sorted((a["labels"]["service"], a["status"]) for a in payloads) == [
        ("checkout", "firing"), ("payments", "firing"), ("payments", "resolved")]
    assert (await get(client, "/api/v1/alerts/stream", 400, limit="x"))["parameter"] == "limit"


async def test_detect_scores_stored_spans_window_by_window(client: httpx.AsyncClient) -> None:
    found = await post(client, "/api/v1/anomalies/detect", {
        "service": "payments", "start": str(T0 // MS), "end": str(CLOCK // MS), "window_s": 60})
    assert len(found["windows"]) == WINDOWS
    assert {w["start"][11:16] for w in found["anomalies"]} >= {"00:40", "00:41"}
    assert [a["status"] for a in found["alerts"]] == ["firing", "resolved"]
    assert found["alerts"][0]["annotations"]["correlation_id"].startswith("req-payments-4")


@pytest.mark.parametrize("body, parameter", [
    ({"window_s": 60}, "service"), ({"service": "payments", "colour": "red"}, "colour"),
    ({"service": "payments", "window_s": 1}, "window_s"), (b"[1, 2]", "body"), (b"{", "body"),
    ({"service": "payments", "start": str((CLOCK - 86_400_000 * MS) // MS), "window_s": 10}, "window_s"),
    ({"service": ["payments"]}, "service"),
], ids=["missing-service", "unknown-field", "window-too-short", "not-an-object", "not-json", "too-many-windows",
        "not-a-string"])
async def test_bad_detect_bodies_are_named(client: httpx.AsyncClient, body: Any, parameter: str) -> None:
    assert (await post(client, "/api/v1/anomalies/detect", body, 400))["parameter"] == parameter


async def test_predict_forecasts_the_ramp_crossing_its_threshold(client: httpx.AsyncClient) -> None:
    found = await post(client, "/api/v1/alerts/predict", {
        "metric": "latency_p95_ms", "threshold": 250, "horizon_minutes": 60, "history_minutes": 60})
    by_service = {p["service"]: p for p in found["predictions"]}
    assert by_service["checkout"]["breach_in_minutes"] is not None
    assert by_service["catalog"]["breach_in_minutes"] is None
    [alert] = found["alerts"]
    assert alert["labels"]["predicted"] == "true" and alert["labels"]["service"] == "checkout"
    assert alert["annotations"]["correlation_id"].startswith("req-checkout-59-")
    bad = await post(client, "/api/v1/alerts/predict", {"metric": "cpu", "threshold": 1}, 400)
    assert bad["parameter"] == "metric"


async def test_trends_health_and_insights(client: httpx.AsyncClient) -> None:
    trend = await get(client, "/api/v1/trends", metric="latency_p95_ms", step_s="600")
    by_service = {s["service"]: s for s in trend["services"]}
    assert by_service["checkout"]["direction"] == "rising" and by_service["catalog"]["direction"] == "flat"
    assert len(by_service["checkout"]["points"]) == 6
    health = {s["service"]: s for s in (await get(client, "/api/v1/services/health"))["services"]}
    assert health["checkout"]["status"] in ("degraded", "critical") and health["checkout"]["firing_alerts"] == 1
    assert health["catalog"]["status"] == "healthy" and health["catalog"]["windows"] == WINDOWS
    found = (await get(client, "/api/v1/insights"))["insights"]
    assert found[0]["kind"] == "firing_alert" and found[0]["service"] == "checkout"
    assert [(i["kind"], i["service"]) for i in found] == [("firing_alert", "checkout"), ("resolved_alert", "payments")]
    assert (await get(client, "/api/v1/trends", 400, metric="cpu"))["parameter"] == "metric"
    # Series come from per-minute rollups: a step is whole minutes.
    assert "multiple of 60" in (await get(client, "/api/v1/trends", 400, step_s="90"))["message"]
