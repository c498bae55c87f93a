"""The query API on real chDB rows: correlation lookups across an ID upgrade, and every endpoint's content."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from api.app import create_app
from api.presentation.rows import iso_ns
from core.settings import ApiSettings, ClickHouseSettings, Settings
from sinks.backend import open_warehouse
from sinks.rollups import refresh_rollups
from sinks.warehouse import Warehouse

DAY_NS = 86_400 * 1_000_000_000
# Yesterday 10:00 UTC: recent, because the exemplar table's TTL drops old rows on insert.
T0 = (time.time_ns() // DAY_NS - 1) * DAY_NS + 10 * 3600 * 1_000_000_000
MS = 1_000_000
X = "order-7f3a9c"  # the external correlation ID, on the root span (arrives last)
G_A = "olly-mk2b1c-1a2b3c4d"  # generated for trace A's spans stored before the root arrived
Y = "req-unrelated-1"
G_D = "olly-mk2b1d-0badcafe"  # trace D: a generated ID and no trace link
TRACE_A, TRACE_B, TRACE_C, TRACE_D = (f"{n:x}" * 32 for n in (10, 11, 12, 13))
TRACE_E = "e" * 31 + "1"  # spans, no correlation ID at all
WINDOW = {"start": str((T0 - 3600_000 * MS) // MS), "end": str((T0 + 3600_000 * MS) // MS)}  # Unix ms
METRIC = "http.server.request.duration"


def iso(at_ms: float) -> str:
    """The API's rendering of T0 + at_ms."""
    return iso_ns(T0 + int(at_ms * MS))


def span(trace: str, span_id: str, parent: str, at_ms: float, dur_ms: float, service: str, name: str,
         kind: str, cid: str, status: str = "Ok", tenant: str = "acme", message: str = "") -> dict[str, Any]:
    return {"Timestamp": T0 + int(at_ms * MS), "TraceId": trace, "SpanId": span_id, "ParentSpanId": parent,
            "SpanName": name, "SpanKind": kind, "ServiceName": service,
            "ResourceAttributes": {"service.name": service, "tenant.id": tenant},
            "SpanAttributes": {"http.request.method": "POST"}, "Duration": int(dur_ms * MS),
            "StatusCode": status, "StatusMessage": message, "CorrelationId": cid,
            "Events.Timestamp": [T0 + int(at_ms * MS)], "Events.Name": ["start"], "Events.Attributes": [{}]}


def log(trace: str, span_id: str, at_ms: float, service: str, number: int, text: str, body: str, cid: str,
        tenant: str = "acme") -> dict[str, Any]:
    return {"Timestamp": T0 + int(at_ms * MS), "TraceId": trace, "SpanId": span_id, "SeverityNumber": number,
            "SeverityText": text, "ServiceName": service, "Body": body,
            "ResourceAttributes": {"service.name": service, "tenant.id": tenant},
            "LogAttributes": {"order.id": "7f3a9c"}, "CorrelationId": cid}


def columns(rows: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    rows = list(rows)
    return {key: [row[key] for row in rows] for key in rows[0]}


def link(trace: str, cid: str, source: str, priority: int, at_ms: float, tenant: str = "acme") -> dict[str, Any]:
    return {"Tenant": tenant, "TraceId": trace, "CorrelationId": cid, "Source": source, "Priority": priority,
            "FirstSeen": T0 + int(at_ms * MS), "LastSeen": T0 + int(at_ms * MS)}


A_EARLY = [  # stored first, under the generated ID
    span(TRACE_A, "a2" * 8, "a1" * 8, 10, 300, "frontend", "POST /charge", "Client", G_A),
    span(TRACE_A, "a3" * 8, "a2" * 8, 20, 250, "payment-service", "POST /charge", "Server", G_A, "Error",
         message="card declined"),
    span(TRACE_A, "a4" * 8, "a3" * 8, 30, 40, "payment-service", "SELECT payments", "Client", G_A),
    span(TRACE_A, "a5" * 8, "a1" * 8, 400, 50, "inventory-service", "GET /stock", "Server", G_A),
]
A_ROOT = span(TRACE_A, "a1" * 8, "", 0, 500, "frontend", "POST /checkout", "Server", X)


def store_scenario(wh: Warehouse) -> None:
    """Trace A: children under a generated ID, root (later) under X; trace B: a retry under
    X (baggage); trace C under another ID; trace D with no link; trace E with no ID."""
    wh.insert("otel_traces", columns(A_EARLY), dedup_token="a-early")
    wh.insert("otel_traces", columns([A_ROOT]), dedup_token="a-root")
    wh.insert("otel_traces", columns([A_ROOT]), dedup_token="a-root-replayed")  # a replay: collapses
    wh.insert("otel_traces", columns([
        span(TRACE_B, "b1" * 8, "", 2000, 80, "frontend", "POST /checkout", "Server", X),
        span(TRACE_C, "c1" * 8, "", 3000, 20, "frontend", "GET /home", "Server", Y),
        span(TRACE_C, "c2" * 8, "c1" * 8, 3005, 10, "cart-service", "GET /cart", "Server", Y),
        span(TRACE_D, "d1" * 8, "", 4000, 5, "frontend", "GET /health", "Server", G_D),
        span(TRACE_E, "e1" * 8, "", 5000, 5, "frontend", "GET /ping", "Server", ""),
    ]))
    wh.insert("otel_logs", columns([
        log(TRACE_A, "a3" * 8, 200, "payment-service", 17, "ERROR", "card declined for order 7f3a9c", G_A),
        log(TRACE_A, "a1" * 8, 1, "frontend", 9, "INFO", "checkout started", X),
        log("", "", 600, "frontend", 13, "WARN", "retrying checkout", X),
        log(TRACE_C, "c1" * 8, 3001, "frontend", 9, "INFO", "home page", Y),
    ]))
    wh.insert("ollystack_trace_links", columns([
        link(TRACE_A, G_A, "generated", 6, 10), link(TRACE_A, X, "resource", 0, 500),
        link(TRACE_B, X, "baggage", 3, 2000), link(TRACE_C, Y, "resource", 0, 3000),
    ]))
    wh.insert("metric_exemplars", columns([
        {"Timestamp": T0 + 270 * MS, "MetricName": METRIC, "MetricType": "histogram",
         "ServiceName": "payment-service", "Value": 250.0, "TraceId": TRACE_A, "SpanId": "a3" * 8,
         "CorrelationId": G_A, "FilteredAttributes": {}, "Attributes": {"http.route": "/charge"}, "Tenant": "acme"},
        {"Timestamp": T0 + 3020 * MS, "MetricName": METRIC, "MetricType": "histogram",
         "ServiceName": "frontend", "Value": 20.0, "TraceId": TRACE_C, "SpanId": "c1" * 8,
         "CorrelationId": Y, "FilteredAttributes": {}, "Attributes": {"http.route": "/"}, "Tenant": "acme"},
    ]))


def insert_scenario(wh: Warehouse) -> None:
    """The scenario's rows, and the rollups the services and the map read brought up to date."""
    store_scenario(wh)
    refresh_rollups(wh, margin_s=0, until_done=True)


def make_app(wh: Warehouse, tokens: dict[str, str] | None = None, **kwargs: Any) -> Starlette:
    """The app with "now" two hours after T0, and auth on when API keys (key -> tenant[:role])
    are given."""
    settings = Settings(api=ApiSettings(keys=tokens or {}))
    return create_app(settings, wh, clock_ns=lambda: T0 + 2 * 3600 * 1_000_000_000, **kwargs)


def make_client(wh: Warehouse, tokens: dict[str, str] | None = None, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(wh, tokens, **kwargs)),
                             base_url="http://api")


@pytest_asyncio.fixture
async def client(warehouse: Warehouse) -> AsyncIterator[httpx.AsyncClient]:
    insert_scenario(warehouse)
    async with make_client(warehouse) as c:
        yield c


async def get_json(client: httpx.AsyncClient, url: str, expect: int = 200, /, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == expect, response.text
    return response.json()


@pytest.mark.asyncio
async def test_lookup_returns_every_row_of_an_upgraded_trace_under_the_external_id(client: httpx.AsyncClient) -> None:
    ctx = await get_json(client, f"/api/v1/correlate/{X}")
    spans = [s for t in ctx["traces"] for s in t["spans"]]
    assert sorted(s["span_id"] for s in spans) == sorted(["a1" * 8, "a2" * 8, "a3" * 8, "a4" * 8, "a5" * 8, "b1" * 8])
    assert [t["trace_id"] for t in ctx["traces"]] == [TRACE_A, TRACE_B]
    assert sorted(lg["body"] for lg in ctx["logs"]) == ["card declined for order 7f3a9c", "checkout started",
                                                       "retrying checkout"]
    assert [m["value"] for m in ctx["metrics"]] == [250.0]
    # Only X is shown, never the generated ID the early rows were stored with.
    assert G_A not in orjson.dumps(ctx).decode()
    assert {row["correlation_id"] for row in [*spans, *ctx["logs"], *ctx["metrics"]]} == {X}
    assert ctx["summary"] == {"spans": 6, "logs": 3, "metrics": 1, "errors": 2, "error_spans": 1, "error_logs": 1,
                              "services": 3, "traces": 2, "duration_ms": 2080.0, "truncated": False,
                              "total_spans": 6, "total_logs": 3, "total_metrics": 1, "error_count": 2,
                              "service_count": 3}
    assert ctx["time_range"] == {"start": iso(0), "end": iso(2080)}
    assert [s["name"] for s in ctx["services"]] == ["frontend", "payment-service", "inventory-service"]
    assert [(e["type"], e["service"]) for e in ctx["errors"]] == [("span", "payment-service"),
                                                                   ("log", "payment-service")]
    trace_a = ctx["traces"][0]
    assert (trace_a["root_service"], trace_a["root_operation"], trace_a["span_count"]) == \
        ("frontend", "POST /checkout", 5)
    stamps = [item["timestamp"] for item in ctx["timeline"]]
    assert stamps == sorted(stamps) and len(stamps) == 6 + 3 + 1
    assert ctx["timeline"][0] == {"timestamp": iso(0), "type": "span", "service": "frontend",
                                  "description": "POST /checkout", "duration_ms": 500.0, "level": "INFO",
                                  "error": False, "trace_id": TRACE_A, "span_id": "a1" * 8}
    assert {"type": "metric", "level": "INFO", "error": False} .items() <= next(
        i for i in ctx["timeline"] if i["type"] == "metric").items()


@pytest.mark.asyncio
async def test_lookup_by_the_generated_id_finds_its_trace_only(client: httpx.AsyncClient) -> None:
    ctx = await get_json(client, f"/api/v1/correlate/{G_A}")
    assert [t["trace_id"] for t in ctx["traces"]] == [TRACE_A]
    assert ctx["summary"]["spans"] == 5 and ctx["summary"]["logs"] == 2  # not the trace-less log of X
    assert {s["correlation_id"] for s in ctx["traces"][0]["spans"]} == {G_A}


@pytest.mark.asyncio
async def test_timeline_and_impact(client: httpx.AsyncClient) -> None:
    timeline = await get_json(client, f"/api/v1/correlate/{X}/timeline")
    assert [i["type"] for i in timeline["timeline"]][:3] == ["span", "log", "span"]
    assert timeline["correlation_id"] == X and not timeline["truncated"]
    impact = await get_json(client, f"/api/v1/correlate/{X}/impact")
    by_service = {s["service"]: s for s in impact["services"]}
    assert by_service["payment-service"]["error_spans"] == 1 and by_service["payment-service"]["error_logs"] == 1
    assert by_service["payment-service"]["first_error_at"] == iso(20)
    assert by_service["frontend"]["p95_ms"] == 500.0
    assert {o["operation"]: o["errors"] for o in by_service["payment-service"]["operations"]} == {
        "POST /charge": 1, "SELECT payments": 0}
    assert impact["first_failures"] == [{"service": "payment-service", "timestamp": iso(20),
                                         "type": "span", "description": "POST /charge"}]
    assert impact["total_errors"] == 2


@pytest.mark.asyncio
async def test_trace_is_a_span_tree_with_its_best_correlation_id(client: httpx.AsyncClient) -> None:
    trace = await get_json(client, f"/api/v1/traces/{TRACE_A.upper()}")
    assert trace["correlation_id"] == X and trace["span_count"] == 5  # the replayed root collapsed
    assert [(s["span_id"][:2], s["depth"]) for s in trace["spans"]] == [
        ("a1", 0), ("a2", 1), ("a3", 2), ("a4", 3), ("a5", 1)]
    assert {s["correlation_id"] for s in trace["spans"]} == {X}
    assert trace["spans"][0]["events"] == [{"timestamp": iso(0), "name": "start",
                                            "attributes": {}}]
    assert trace["duration_ms"] == 500.0 and trace["error_count"] == 1
    no_link = await get_json(client, f"/api/v1/traces/{TRACE_D}")
    assert no_link["correlation_id"] == G_D  # no link: the rows' own ID
    await get_json(client, f"/api/v1/traces/{'f' * 32}", 404)


@pytest.mark.asyncio
async def test_trace_search_filters_and_pages(client: httpx.AsyncClient) -> None:
    found = await get_json(client, "/api/v1/traces", service="payment-service", status="error", **WINDOW)
    assert [(t["trace_id"], t["correlation_id"], t["root_operation"], t["span_count"]) for t in found["traces"]] == [
        (TRACE_A, X, "POST /checkout", 5)]
    slow = await get_json(client, "/api/v1/traces", min_duration_ms="100", **WINDOW)
    assert [t["trace_id"] for t in slow["traces"]] == [TRACE_A]
    fast = await get_json(client, "/api/v1/traces", max_duration_ms="6", operation="GET /health", **WINDOW)
    assert [(t["trace_id"], t["correlation_id"]) for t in fast["traces"]] == [(TRACE_D, G_D)]
    first = await get_json(client, "/api/v1/traces", limit=2, **WINDOW)
    assert [t["trace_id"] for t in first["traces"]] == [TRACE_E, TRACE_D] and first["next_offset"] == 2
    rest = await get_json(client, "/api/v1/traces", limit=10, offset=2, **WINDOW)
    assert [t["trace_id"] for t in rest["traces"]] == [TRACE_C, TRACE_B, TRACE_A] and rest["next_offset"] is None
    assert (await get_json(client, "/api/v1/traces"))["traces"] == []  # default window: the last hour, T0+1h..T0+2h


@pytest.mark.asyncio
async def test_logs_by_correlation_trace_severity_text_and_service(client: httpx.AsyncClient) -> None:
    by_id = await get_json(client, "/api/v1/logs", correlation_id=X, order="asc")
    assert [lg["body"] for lg in by_id["logs"]] == ["checkout started", "card declined for order 7f3a9c",
                                                   "retrying checkout"]
    assert {lg["correlation_id"] for lg in by_id["logs"]} == {X}
    by_trace = await get_json(client, "/api/v1/logs", trace_id=TRACE_A)
    assert [(lg["body"], lg["correlation_id"]) for lg in by_trace["logs"]] == [
        ("card declined for order 7f3a9c", X), ("checkout started", X)]
    errors = await get_json(client, "/api/v1/logs", severity="error", **WINDOW)
    assert [(lg["level"], lg["error"], lg["service"]) for lg in errors["logs"]] == [("ERROR", True, "payment-service")]
    warn_up = await get_json(client, "/api/v1/logs", severity="WARN", **WINDOW)
    assert len(warn_up["logs"]) == 2
    text = await get_json(client, "/api/v1/logs", text="DECLINED", **WINDOW)
    assert [lg["span_id"] for lg in text["logs"]] == ["a3" * 8]
    service = await get_json(client, "/api/v1/logs", service="frontend", limit=1, **WINDOW)
    assert [lg["body"] for lg in service["logs"]] == ["home page"] and service["next_offset"] == 1
    assert (await get_json(client, "/api/v1/logs", correlation_id="nobody-1"))["logs"] == []


@pytest.mark.asyncio
async def test_services_and_service_map(client: httpx.AsyncClient) -> None:
    services = {s["service"]: s for s in (await get_json(client, "/api/v1/services", **WINDOW))["services"]}
    assert set(services) == {"frontend", "payment-service", "inventory-service", "cart-service"}
    frontend = services["frontend"]
    assert (frontend["requests"], frontend["errors"], frontend["spans"]) == (5, 0, 6)
    # Percentiles come from sketches with 16 buckets per power of two: within 1/32.
    assert services["payment-service"]["error_rate"] == 1.0
    assert services["payment-service"]["p50_ms"] == pytest.approx(250.0, rel=1 / 32)
    graph = await get_json(client, "/api/v1/service-map", **WINDOW)
    edges = {(e["caller"], e["callee"]): e for e in graph["edges"]}
    assert set(edges) == {("frontend", "payment-service"), ("frontend", "inventory-service"),
                          ("frontend", "cart-service")}
    assert (edges[("frontend", "payment-service")]["calls"], edges[("frontend", "payment-service")]["errors"]) == (1, 1)
    assert edges[("frontend", "inventory-service")]["p99_ms"] == pytest.approx(50.0, rel=1 / 32)
    assert [(n["service"], n["kind"]) for n in graph["nodes"]] == [
        ("cart-service", "service"), ("frontend", "service"), ("inventory-service", "service"),
        ("payment-service", "service")]


@pytest.mark.asyncio
async def test_exemplars_and_the_redirect_to_their_correlation(client: httpx.AsyncClient) -> None:
    found = await get_json(client, f"/api/v1/metrics/{METRIC}/exemplars", **WINDOW)
    assert [(e["trace_id"], e["correlation_id"], e["value"]) for e in found["exemplars"]] == [
        (TRACE_C, Y, 20.0), (TRACE_A, X, 250.0)]  # newest first; A shows its best link, not G_A
    only = await get_json(client, f"/api/v1/metrics/{METRIC}/exemplars", service="payment-service", **WINDOW)
    assert [e["span_id"] for e in only["exemplars"]] == ["a3" * 8]
    assert (await get_json(client, "/api/v1/metrics/no.such.metric/exemplars", **WINDOW))["exemplars"] == []
    for trace, location in ((TRACE_A, f"/api/v1/correlate/{X}"), (TRACE_D, f"/api/v1/correlate/{G_D}"),
                            (TRACE_E, f"/api/v1/traces/{TRACE_E}")):
        response = await client.get(f"/api/v1/exemplars/{trace}/trace")
        assert (response.status_code, response.headers["location"]) == (307, location)
    await get_json(client, f"/api/v1/exemplars/{'f' * 32}/trace", 404)
    followed = await client.get(f"/api/v1/exemplars/{TRACE_A}/trace", follow_redirects=True)
    assert followed.json()["correlation_id"] == X


@pytest.mark.asyncio
async def test_an_exemplar_whose_spans_were_sampled_away_still_leads_to_its_id(warehouse: Warehouse) -> None:
    warehouse.insert("metric_exemplars", columns([
        {"Timestamp": T0, "MetricName": METRIC, "MetricType": "histogram", "ServiceName": "frontend", "Value": 3.0,
         "TraceId": "9" * 32, "SpanId": "9" * 16, "CorrelationId": "metric-only-1", "FilteredAttributes": {},
         "Attributes": {}}]))
    async with make_client(warehouse) as client:
        followed = await client.get(f"/api/v1/exemplars/{'9' * 32}/trace", follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["summary"]["metrics"] == 1


@pytest.mark.asyncio
async def test_not_found_and_bad_ids(client: httpx.AsyncClient) -> None:
    missing = await get_json(client, "/api/v1/correlate/nobody-1", 404)
    assert missing["error"] == "not_found" and "nobody-1" in missing["message"]
    for url in ("/api/v1/correlate/olly-NOTOURS-1", "/api/v1/correlate/a%3Cb%3E/impact", "/api/v1/traces/xyz"):
        body = await get_json(client, url, 400)
        assert body["error"] == "invalid_parameter" and body["parameter"] in ("correlation_id", "trace_id")
    assert (await get_json(client, "/api/v1/nothing", 404))["error"] == "not_found"
    assert (await client.post(f"/api/v1/correlate/{X}")).status_code == 405


@pytest.mark.asyncio
async def test_ids_with_a_slash_are_looked_up(warehouse: Warehouse) -> None:
    cid = "tenant/a:b=c+d@e"
    warehouse.insert("otel_traces", columns([span(TRACE_A, "a1" * 8, "", 0, 5, "frontend", "GET /", "Server", cid)]))
    async with make_client(warehouse) as c:
        ctx = await get_json(c, "/api/v1/correlate/tenant%2Fa%3Ab%3Dc%2Bd%40e")
        assert ctx["correlation_id"] == cid and ctx["summary"]["spans"] == 1
        assert (await get_json(c, "/api/v1/correlate/tenant%2Fa%3Ab%3Dc%2Bd%40e/timeline"))["correlation_id"] == cid


@pytest.mark.asyncio
async def test_lookups_are_cached_briefly(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    late = span(TRACE_B, "b2" * 8, "b1" * 8, 2010, 5, "frontend", "late", "Internal", X)
    async with make_client(warehouse) as cached:
        assert (await get_json(cached, f"/api/v1/correlate/{X}"))["summary"]["spans"] == 6
        warehouse.insert("otel_traces", columns([late]))
        assert (await get_json(cached, f"/api/v1/correlate/{X}"))["summary"]["spans"] == 6
        scrape = (await cached.get("/metrics")).text
        assert 'ollystack_api_correlation_cache_total{result="hit"} 1.0' in scrape
    async with make_client(warehouse, cache_ttl_s=0) as uncached:
        assert (await get_json(uncached, f"/api/v1/correlate/{X}"))["summary"]["spans"] == 7


@pytest.mark.asyncio
async def test_health_readiness_metrics_and_openapi(client: httpx.AsyncClient, chdb_dir: Path, unique: str) -> None:
    assert await get_json(client, "/healthz") == {"status": "ok"}
    assert await get_json(client, "/readyz") == {"status": "ready"}
    await client.get(f"/api/v1/correlate/{X}")
    scrape = (await client.get("/metrics")).text
    assert 'ollystack_api_requests_total{route="/api/v1/correlate/{correlation_id:path}",status="200"}' in scrape
    doc = await get_json(client, "/openapi.json")
    assert {"/api/v1/correlate/{correlation_id}", "/api/v1/logs", "/api/v1/service-map",
            "/api/v1/exemplars/{trace_id}/trace"} <= set(doc["paths"])
    unmigrated = open_warehouse(ClickHouseSettings(database=f"{unique}_bare"), chdb_dir)  # same data folder, no tables
    async with make_client(unmigrated) as unready:
        response = await unready.get("/readyz")
        assert response.status_code == 503 and "migrations" in response.json()["reason"]
