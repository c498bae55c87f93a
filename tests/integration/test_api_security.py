"""Hostile input in every parameter is a 400 naming it and leaves the data alone; tenants never
see each other's rows; API keys are required when configured."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from test_api import (  # the scenario of the endpoint tests (same folder)
    METRIC,
    MS,
    T0,
    TRACE_A,
    WINDOW,
    X,
    columns,
    insert_scenario,
    link,
    log,
    make_app,
    make_client,
    span,
)

from api.app import create_app
from core.errors import ConfigError
from core.settings import OtlpSettings, Settings
from sinks.rollups import refresh_rollups
from sinks.warehouse import Warehouse
from tests.support.gateway import running_gateway

HOSTILE = {
    "or-true": "' OR 1=1 --",
    "drop-table": "x'); DROP TABLE otel_traces; --",
    "union-select": "1 UNION SELECT name FROM system.tables",
    "stacked-sleep": "1; SELECT sleep(3)",
    "script": "<script>alert(1)</script>",
    "traversal": "../../etc/passwd",
    "nul": "abc\x00def",
    "oversized": "a" * 5000,
}
QUERY_PARAMS: dict[str, tuple[str, ...]] = {
    "/api/v1/traces": ("service", "operation", "status", "min_duration_ms", "max_duration_ms", "start", "end",
                       "limit", "offset"),
    "/api/v1/logs": ("correlation_id", "trace_id", "service", "severity", "text", "start", "end", "limit",
                     "offset", "order"),
    "/api/v1/services": ("start", "end", "limit"),
    "/api/v1/service-map": ("start", "end", "limit"),
    f"/api/v1/metrics/{METRIC}/exemplars": ("service", "start", "end", "limit", "offset"),
}
PATH_PARAMS = (
    ("/api/v1/correlate/{}", "correlation_id"),
    ("/api/v1/correlate/{}/timeline", "correlation_id"),
    ("/api/v1/correlate/{}/impact", "correlation_id"),
    ("/api/v1/traces/{}", "trace_id"),
    ("/api/v1/exemplars/{}/trace", "trace_id"),
    ("/api/v1/metrics/{}/exemplars", "metric_name"),
)
TABLES = ("otel_traces", "otel_logs", "ollystack_trace_links", "metric_exemplars")


def table_counts(wh: Warehouse) -> dict[str, int]:
    return {t: wh.query(f"SELECT count() AS n FROM {wh.database}.{t}")[0]["n"] for t in TABLES}


def _check_400(response: httpx.Response, parameter: str, what: str) -> str | None:
    if response.status_code != 400:
        return f"{what}: {response.status_code} {response.text[:200]}"
    body = response.json()
    if body.get("parameter") != parameter or body.get("error") != "invalid_parameter":
        return f"{what}: names {body.get('parameter')!r}, not {parameter!r}"
    return None


@pytest.mark.asyncio
async def test_hostile_values_in_every_parameter_are_400s_naming_it(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    before = table_counts(warehouse)
    problems: list[str] = []
    async with make_client(warehouse) as client:
        for url, names in QUERY_PARAMS.items():
            for name in names:
                for label, value in HOSTILE.items():
                    response = await client.get(url, params={name: value})
                    problems.append(_check_400(response, name, f"{url}?{name}={label}"))
        for template, name in PATH_PARAMS:
            for label, value in HOSTILE.items():
                response = await client.get(template.format(quote(value, safe="")))
                problems.append(_check_400(response, name, f"{template} {name}={label}"))
        # The data is intact and the API still answers.
        assert (await client.get(f"/api/v1/correlate/{X}")).json()["summary"]["spans"] == 6
    assert [p for p in problems if p] == []
    assert table_counts(warehouse) == before


@pytest.mark.asyncio
@pytest.mark.parametrize("url, expected", [
    ("/api/v1/traces?limit=10&limit=20", "limit"),
    ("/api/v1/traces?nope=1", "nope"),
    (f"/api/v1/correlate/{X}?verbose=1", "verbose"),
    ("/api/v1/traces?limit=0", "limit"),
    ("/api/v1/traces?limit=1001", "limit"),
    ("/api/v1/traces?offset=10001", "offset"),
    ("/api/v1/traces?min_duration_ms=nan", "min_duration_ms"),
    ("/api/v1/traces?min_duration_ms=5&max_duration_ms=1", "min_duration_ms"),
    ("/api/v1/logs?start=2026-02-30T00:00:00Z", "start"),
    ("/api/v1/logs?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", "start"),
    ("/api/v1/services?start=2026-01-01T00:00:00Z&end=2026-03-01T00:00:00Z", "start"),
    ("/api/v1/logs?trace_id=" + "0" * 32, "trace_id"),
    ("/api/v1/logs?correlation_id=olly-bad", "correlation_id"),
    ("/api/v1/correlate/", "correlation_id"),
], ids=["repeated", "unknown", "unknown-on-lookup", "limit-zero", "limit-over", "offset-over", "nan", "min-above-max",
        "no-such-date", "start-after-end", "range-over-cap", "zero-trace", "bad-generated-id", "empty-id"])
async def test_malformed_values_name_the_parameter(warehouse: Warehouse, url: str, expected: str) -> None:
    async with make_client(warehouse) as client:
        response = await client.get(url)
    assert response.status_code == 400 and response.json()["parameter"] == expected, response.text


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["{tenant:String}", "50% off", "a\\b"], ids=["param-syntax", "percent", "backslash"])
async def test_odd_but_harmless_text_is_bound_not_interpreted(warehouse: Warehouse, value: str) -> None:
    insert_scenario(warehouse)
    async with make_client(warehouse) as client:
        response = await client.get("/api/v1/logs", params={"text": value, **WINDOW})
    assert response.status_code == 200 and response.json()["logs"] == []


def insert_other_tenant(wh: Warehouse) -> str:
    """globex: trace F under the same external ID X, with its own services, logs and exemplar."""
    trace_f = "f" * 31 + "1"
    wh.insert("otel_traces", columns([
        span(trace_f, "f1" * 8, "", 100, 30, "globex-web", "POST /checkout", "Server", X, tenant="globex"),
        span(trace_f, "f2" * 8, "f1" * 8, 110, 10, "globex-pay", "POST /pay", "Server", X, "Error", tenant="globex"),
    ]))
    wh.insert("otel_logs", columns([log(trace_f, "f2" * 8, 115, "globex-pay", 17, "ERROR", "globex failure", X,
                                        tenant="globex")]))
    # globex also sent acme's trace A (a call across tenants carries the traceparent), with
    # the best source there is: acme must still see its own ID on it.
    wh.insert("ollystack_trace_links", columns([link(trace_f, X, "resource", 0, 100, tenant="globex"),
                                                link(TRACE_A, "globex-own-id", "resource", 0, 1, tenant="globex")]))
    wh.insert("metric_exemplars", columns([
        {"Timestamp": T0 + 120 * MS, "MetricName": METRIC, "MetricType": "histogram", "ServiceName": "globex-pay",
         "Value": 10.0, "TraceId": trace_f, "SpanId": "f2" * 8, "CorrelationId": X, "FilteredAttributes": {},
         "Attributes": {}, "Tenant": "globex"},
        {"Timestamp": T0 + 130 * MS, "MetricName": METRIC, "MetricType": "histogram", "ServiceName": "nobody",
         "Value": 1.0, "TraceId": "", "SpanId": "", "CorrelationId": X, "FilteredAttributes": {}, "Attributes": {},
         "Tenant": "globex"},
    ]))
    return trace_f


async def seen(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    """What one key sees through every data endpoint."""
    headers = {"X-API-Key": key}
    get = lambda url, **params: client.get(url, params=params, headers=headers)  # noqa: E731
    lookup = await get(f"/api/v1/correlate/{X}")
    return {
        "lookup_traces": [t["trace_id"] for t in lookup.json()["traces"]],
        "lookup_metrics": [m["trace_id"] for m in lookup.json()["metrics"]],
        "lookup_services": sorted(s["name"] for s in lookup.json()["services"]),
        "search": sorted(t["trace_id"] for t in (await get("/api/v1/traces", **WINDOW)).json()["traces"]),
        "logs": sorted(lg["body"] for lg in (await get("/api/v1/logs", **WINDOW)).json()["logs"]),
        "services": sorted(s["service"] for s in (await get("/api/v1/services", **WINDOW)).json()["services"]),
        "edges": sorted(e["callee"] for e in (await get("/api/v1/service-map", **WINDOW)).json()["edges"]),
        "exemplars": sorted(e["service"] for e in
                            (await get(f"/api/v1/metrics/{METRIC}/exemplars", **WINDOW)).json()["exemplars"]),
        "trace_a": (await get(f"/api/v1/traces/{TRACE_A}")).status_code,
        "trace_a_id": (await get(f"/api/v1/traces/{TRACE_A}")).json().get("correlation_id"),
        "redirect_a": (await get(f"/api/v1/exemplars/{TRACE_A}/trace")).status_code,
        "logs_of_a": len((await get("/api/v1/logs", trace_id=TRACE_A)).json()["logs"]),
        "text": orjson.dumps(lookup.json()).decode(),
    }


@pytest.mark.asyncio
async def test_a_tenant_sees_only_its_own_rows(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)  # tenant acme
    trace_f = insert_other_tenant(warehouse)
    refresh_rollups(warehouse, margin_s=0, until_done=True)
    async with make_client(warehouse, {"key-acme": "acme", "key-globex": "globex"}) as client:
        globex = await seen(client, "key-globex")
        acme = await seen(client, "key-acme")
    # globex's exemplar without a trace, stored under X, is globex's own.
    assert globex["lookup_traces"] == [trace_f] and globex["lookup_metrics"] == [trace_f, ""]
    assert globex["lookup_services"] == ["globex-pay", "globex-web", "nobody"]
    assert (globex["search"], globex["logs"]) == ([trace_f], ["globex failure"])
    assert (globex["services"], globex["edges"], globex["exemplars"]) == (
        ["globex-pay", "globex-web"], ["globex-pay"], ["globex-pay", "nobody"])
    assert (globex["trace_a"], globex["redirect_a"], globex["logs_of_a"]) == (404, 404, 0)
    assert "acme" not in globex["text"] and "globex" not in acme["text"]
    assert acme["lookup_traces"] == sorted([TRACE_A, "b" * 32]) and acme["lookup_metrics"] == [TRACE_A]
    assert "globex-web" not in acme["services"] and "globex-pay" not in acme["exemplars"]
    assert (acme["trace_a"], acme["redirect_a"], acme["logs_of_a"]) == (200, 307, 2)
    assert acme["trace_a_id"] == X  # not the ID globex linked to the same trace ID


@pytest.mark.asyncio
async def test_keys_are_required_when_configured(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    async with make_client(warehouse, {"key-acme": "acme"}) as client:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "key-acme"}):
            response = await client.get(f"/api/v1/correlate/{X}", headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get(f"/api/v1/correlate/{X}",
                                 headers={"Authorization": "Bearer key-acme"})).status_code == 200
        assert (await client.get(f"/api/v1/correlate/{X}", headers={"X-API-Key": "key-acme"})).status_code == 200
        for open_path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await client.get(open_path)).status_code == 200


@pytest.mark.asyncio
async def test_an_admin_key_reads_every_tenant_and_a_viewer_key_one(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)  # tenant acme
    trace_f = insert_other_tenant(warehouse)
    refresh_rollups(warehouse, margin_s=0, until_done=True)
    async with make_client(warehouse, {"key-acme": "acme:viewer", "key-ops": "acme:admin"}) as client:
        viewer = await seen(client, "key-acme")
        admin = await seen(client, "key-ops")
    assert trace_f not in viewer["lookup_traces"] and "globex-pay" not in viewer["services"]
    assert trace_f in admin["lookup_traces"] and {"globex-pay", "frontend"} <= set(admin["services"])


def test_the_api_refuses_to_serve_unprotected_while_ingest_needs_tokens(warehouse: Warehouse) -> None:
    settings = Settings(otlp=OtlpSettings(auth_tokens={"ingest-key": "acme"}))
    with pytest.raises(ConfigError, match="api.keys"):
        create_app(settings, warehouse)


@pytest.mark.asyncio
async def test_ingest_tokens_and_api_keys_each_open_only_their_own_door(
        warehouse: Warehouse, kafka_bootstrap: str, unique: str) -> None:
    insert_scenario(warehouse)
    api = make_app(warehouse, {"read-key": "acme"})
    body = ExportTraceServiceRequest().SerializeToString()
    async with running_gateway(kafka_bootstrap, unique, auth_tokens={"ingest-key": "acme"}) as gateway, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as otlp, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api") as query:
        async def export(key: str) -> int:
            response = await otlp.post("/v1/traces", content=body, headers={
                "Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"})
            return response.status_code

        async def read(key: str) -> int:
            return (await query.get(f"/api/v1/correlate/{X}", headers={"Authorization": f"Bearer {key}"})).status_code

        assert (await export("ingest-key"), await export("read-key")) == (200, 401)
        assert (await read("read-key"), await read("ingest-key")) == (200, 401)


@pytest.mark.asyncio
async def test_a_shared_trace_id_leaks_no_exemplar_and_no_correlation_id(warehouse: Warehouse) -> None:
    """globex (B) records a metric whose exemplar names acme's (A) trace A, and a span of its
    own on that trace under its own ID: every read path keeps each tenant to its own rows."""
    insert_scenario(warehouse)  # acme: trace A under X
    theirs = "globex-own-7"
    warehouse.insert("otel_traces", columns([
        span(TRACE_A, "9b" * 8, "", 5, 1, "globex-edge", "GET /partner", "Server", theirs, tenant="globex")]))
    warehouse.insert("ollystack_trace_links", columns([link(TRACE_A, theirs, "header", 2, 5, tenant="globex")]))
    warehouse.insert("metric_exemplars", columns([
        {"Timestamp": T0 + 6 * MS, "MetricName": "globex.calls", "MetricType": "gauge", "ServiceName": "globex-edge",
         "Value": 3.0, "TraceId": TRACE_A, "SpanId": "9b" * 8, "CorrelationId": theirs, "FilteredAttributes": {},
         "Attributes": {}, "Tenant": "globex"}]))
    async with make_client(warehouse, {"key-acme": "acme", "key-globex": "globex"}) as client:
        acme, globex = {"X-API-Key": "key-acme"}, {"X-API-Key": "key-globex"}
        theirs_for_acme = await client.get("/api/v1/metrics/globex.calls/exemplars", params=WINDOW, headers=acme)
        own_lookup = (await client.get(f"/api/v1/correlate/{X}", headers=acme)).json()
        other_id = await client.get(f"/api/v1/correlate/{theirs}", headers=acme)
        other_timeline = await client.get(f"/api/v1/correlate/{theirs}/timeline", headers=acme)
        redirect = await client.get(f"/api/v1/exemplars/{TRACE_A}/trace", headers=acme)
        trace = (await client.get(f"/api/v1/traces/{TRACE_A}", headers=acme)).json()
        their_lookup = (await client.get(f"/api/v1/correlate/{theirs}", headers=globex)).json()
        their_exemplars = (await client.get("/api/v1/metrics/globex.calls/exemplars", params=WINDOW,
                                            headers=globex)).json()
    assert theirs_for_acme.status_code == 200 and theirs_for_acme.json()["exemplars"] == []
    assert "globex" not in orjson.dumps(own_lookup).decode() and theirs not in orjson.dumps(own_lookup).decode()
    assert (other_id.status_code, other_timeline.status_code) == (404, 404)
    assert redirect.status_code == 307 and redirect.headers["location"].endswith(f"/api/v1/correlate/{X}")
    assert trace["correlation_id"] == X and {s["service"] for s in trace["spans"]} >= {"frontend"}
    assert "globex-edge" not in {s["service"] for s in trace["spans"]}
    assert [m["metric_name"] for m in their_lookup["metrics"]] == ["globex.calls"]
    assert {s["service"] for t in their_lookup["traces"] for s in t["spans"]} == {"globex-edge"}
    assert [e["correlation_id"] for e in their_exemplars["exemplars"]] == [theirs]
