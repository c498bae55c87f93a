"""Trace search by span and resource attributes, log search by attributes and body words, and
the correlation list, over rows stored through the ingest stage's own path (chDB)."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from api.app import create_app
from core.settings import ApiSettings, ClickHouseSettings, Settings
from sinks.warehouse import Warehouse
from tests.support.builders import T0, log_record, logs_request, span, traces_request
from tests.support.ingesting import store_async
from tests.support.warehouses import migrated_warehouse

pytestmark = pytest.mark.asyncio
MS = 1_000_000
WINDOW = {"start": str(T0 // MS - 60_000), "end": str(T0 // MS + 600_000)}  # Unix ms around T0
T1, T2, T3, T4, T5 = (f"{n}" * 32 for n in range(1, 6))
SQL = "SELECT * FROM t WHERE a = 'x'"


def sid(trace: str, n: int) -> str:
    return trace[:14] + f"{n:02d}"


async def store_traces(wh: Warehouse) -> None:
    """T1: /orders for customer 42 (prod); T2: /orders for customer 7, failing (staging); T3:
    /invoices for customer 42 (prod, region on the resource); T4: a customer ID that is no
    number; T5: /orders and customer 42 on different spans."""
    requests = [
        traces_request("orders", [
            span(T1, sid(T1, 1), name="POST /orders", start_ns=T0 + 1 * MS, http__route="/orders",
                 customer__id=42, http__response__status_code=200, region="eu"),
            span(T1, sid(T1, 2), sid(T1, 1), "SELECT", T0 + 2 * MS, db__query__text=SQL),
        ], deployment__environment__name="prod"),
        traces_request("orders", [
            span(T2, sid(T2, 1), name="POST /orders", start_ns=T0 + 3 * MS, duration_ns=80 * MS, error=True,
                 http__route="/orders", customer__id=7, http__response__status_code=500),
        ], deployment__environment__name="staging"),
        traces_request("billing", [
            span(T3, sid(T3, 1), name="GET /invoices", start_ns=T0 + 4 * MS, http__route="/invoices",
                 customer__id=42, note="a b=c"),
        ], deployment__environment__name="prod", region="eu"),
        traces_request("billing", [
            span(T4, sid(T4, 1), name="GET /invoices", start_ns=T0 + 5 * MS, customer__id="forty-two",
                 city="Zürich 東京"),
        ]),
        traces_request("orders", [
            span(T5, sid(T5, 1), name="POST /orders", start_ns=T0 + 6 * MS, http__route="/orders"),
            span(T5, sid(T5, 2), sid(T5, 1), "charge", T0 + 7 * MS, customer__id=42),
        ]),
    ]
    await store_async(wh, "traces", requests, "spans")


def make_client(wh: Warehouse, keys: dict[str, str] | None = None) -> httpx.AsyncClient:
    app: Starlette = create_app(Settings(api=ApiSettings(keys=keys or {})), wh, clock_ns=lambda: T0 + 3600 * 10**9)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture(scope="module")
def searched(chdb_dir: Path) -> Iterator[Warehouse]:
    """One database for the module's read-only searches: the traces and the logs, stored once."""
    with migrated_warehouse(ClickHouseSettings(database="t" + uuid.uuid4().hex[:10]), chdb_dir) as wh:
        asyncio.run(store_traces(wh))
        asyncio.run(store_logs(wh))
        yield wh


@pytest_asyncio.fixture
async def traced(searched: Warehouse) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(searched) as client:
        yield client


async def found(client: httpx.AsyncClient, expect: int = 200, **params: str) -> Any:
    response = await client.get("/api/v1/traces", params={**WINDOW, **params})
    assert response.status_code == expect, response.text
    body = response.json()
    return {t["trace_id"] for t in body["traces"]} if expect == 200 else body


@pytest.mark.parametrize(("tags", "expected"), [
    ("http.route=/orders", {T1, T2, T5}),
    ("span.http.route=/orders customer.id=42", {T1}),  # T5 has both, but on different spans
    ("http.route=/orders && customer.id=42", {T1}),
    ("customer.id=42", {T1, T3, T5}),
    ('customer.id="42"', {T1, T3, T5}),
    ("customer.id=42.0", {T1, T3, T5}),
    ("customer.id>=42", {T1, T3, T5}),
    ("customer.id>7", {T1, T3, T5}),
    ("customer.id<=7", {T2}),
    ("customer.id<42.5 customer.id>7.5", {T1, T3, T5}),
    ("customer.id!=42", {T2}),  # numeric: "forty-two" is no number, so neither equal nor unequal
    ('customer.id!="42"', {T2, T4}),
    ("http.response.status_code>=500", {T2}),
    ("http.response.status_code<500", {T1}),
    ('note="a b=c"', {T3}),
    (f'db.query.text="{SQL}"', {T1}),
    ('city="Zürich 東京"', {T4}),
    ("resource.region=eu", {T3}),
    ("span.region=eu", {T1}),
    ("region=eu", {T1, T3}),
    ("resource.deployment.environment.name=prod span.http.route=/orders", {T1}),
    ("resource.service.name=billing", {T3, T4}),
    ("resource.deployment.environment.name!=prod", {T2}),
    ('note=""', set()),
    ("customer.id=43", set()),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_traces_by_attributes(traced: httpx.AsyncClient, tags: str, expected: set[str]) -> None:
    assert await found(traced, tags=tags) == expected


async def test_attributes_combine_with_the_other_span_filters(traced: httpx.AsyncClient) -> None:
    assert await found(traced, tags="http.route=/orders", status="error") == {T2}
    assert await found(traced, tags="http.route=/orders", min_duration_ms="50") == {T2}
    assert await found(traced, tags="customer.id=42", service="billing") == {T3}
    assert await found(traced, tags="customer.id=42", operation="charge") == {T5}


@pytest.mark.parametrize("tags", [
    "a'b=1", "a\\b=1", "'; DROP TABLE otel_traces; --=1", "k" * 129 + "=1", "ключ=1", "=1", "a=1 b",
    'a="unclosed', "a=\x00", "a=" + "v" * 1100, " ".join(f"k{i}=1" for i in range(11)),
], ids=["quote", "backslash", "sql", "long-key", "unicode-key", "empty-key", "dangling", "unclosed", "nul",
        "very-long", "too-many"])
async def test_hostile_keys_are_refused_naming_the_parameter(traced: httpx.AsyncClient, tags: str) -> None:
    body = await found(traced, 400, tags=tags)
    assert body["error"] == "invalid_parameter" and body["parameter"] == "tags"


@pytest.mark.parametrize("value", [
    "' OR 1=1 --", "\\' OR ''='", "x\\\\y", "'); DROP TABLE otel_traces; --", "%' OR '%'='", "東京\u202e",
    "{v:String}", "v" * 256,
], ids=["or-true", "escaped-quote", "backslashes", "drop", "like", "unicode", "placeholder", "longest"])
async def test_hostile_values_are_bound_harmlessly(traced: httpx.AsyncClient, searched: Warehouse,
                                                   value: str) -> None:
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert await found(traced, tags=f"http.route={quoted}") == set()
    assert await found(traced, tags=f"route={quoted}") == set()
    assert searched.query(f"SELECT count() AS n FROM {searched.database}.otel_traces")[0]["n"] == 7


async def store_logs(wh: Warehouse) -> None:
    records = [
        log_record(T1, sid(T1, 1), "Card declined for order 7f3a9c", T0 + 1 * MS, 17, order__id="7f3a9c",
                   http__response__status_code=502),
        log_record(T2, sid(T2, 1), "card accepted", T0 + 2 * MS, 9, order__id="1", http__response__status_code=200),
        log_record(T3, sid(T3, 1), "Declined: retry scheduled", T0 + 3 * MS, 13, retry=3),
        log_record("", "", "zürich état 東京", T0 + 4 * MS, 9),
        log_record("", "", "carddeclined", T0 + 5 * MS, 9),
    ]
    await store_async(wh, "logs", [logs_request("orders", records[:3]), logs_request("billing", records[3:])], "logs")


@pytest_asyncio.fixture
async def logged(searched: Warehouse) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(searched) as client:
        yield client


async def bodies(client: httpx.AsyncClient, expect: int = 200, **params: str) -> Any:
    response = await client.get("/api/v1/logs", params={**WINDOW, "order": "asc", **params})
    assert response.status_code == expect, response.text
    return [entry["body"] for entry in response.json()["logs"]] if expect == 200 else response.json()


@pytest.mark.parametrize(("params", "expected"), [
    ({"tokens": "card declined"}, ["Card declined for order 7f3a9c"]),
    ({"tokens": "DECLINED"}, ["Card declined for order 7f3a9c", "Declined: retry scheduled"]),
    ({"tokens": "declined, 7F3A9C"}, ["Card declined for order 7f3a9c"]),
    ({"tokens": "declin"}, []),  # whole words only
    ({"tokens": "état"}, ["zürich état 東京"]),
    ({"tokens": "東京"}, ["zürich état 東京"]),
    ({"text": "declined"}, ["Card declined for order 7f3a9c", "Declined: retry scheduled", "carddeclined"]),
    ({"text": "DECLINED FOR"}, ["Card declined for order 7f3a9c"]),
    ({"tags": "order.id=7f3a9c"}, ["Card declined for order 7f3a9c"]),
    ({"tags": "log.http.response.status_code>=500"}, ["Card declined for order 7f3a9c"]),
    ({"tags": "http.response.status_code<500"}, ["card accepted"]),
    ({"tags": "retry>2"}, ["Declined: retry scheduled"]),
    ({"tags": "resource.service.name=billing"}, ["zürich état 東京", "carddeclined"]),
    ({"tags": "resource.order.id=7f3a9c"}, []),
    ({"tags": "order.id!=7f3a9c"}, ["card accepted"]),
    ({"tags": "resource.service.name=orders", "tokens": "declined"},
     ["Card declined for order 7f3a9c", "Declined: retry scheduled"]),
    ({"tokens": "declined", "severity": "error"}, ["Card declined for order 7f3a9c"]),
    ({"tokens": "card", "text": "accepted"}, ["card accepted"]),
], ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None)
async def test_logs_by_words_text_and_attributes(logged: httpx.AsyncClient, params: dict[str, str],
                                                 expected: list[str]) -> None:
    assert await bodies(logged, **params) == expected


@pytest.mark.parametrize(("params", "parameter"), [
    ({"tokens": " ;-- "}, "tokens"), ({"tokens": " ".join(f"w{i}" for i in range(11))}, "tokens"),
    ({"tags": "a'b=1"}, "tags"), ({"tags": "log.=1"}, "tags"),
], ids=["no-words", "too-many-words", "quote-key", "prefix-only"])
async def test_bad_log_searches_are_refused(logged: httpx.AsyncClient, params: dict[str, str], parameter: str) -> None:
    body = await bodies(logged, 400, **params)
    assert body["parameter"] == parameter


async def store_correlations(wh: Warehouse) -> None:
    """ok-1 and slow-1 succeed; fail-1 has an error span and an error log; fail-2 two error
    spans, later; other-1 is globex's, with three errors."""
    def one(cid: str, trace: str, at_ms: int, service: str, errors: int = 0, spans: int = 2,
            duration_ms: int = 10, tenant: str = "acme") -> bytes:
        built = [span(trace, sid(trace, i), sid(trace, 0) if i else "", f"op{i}", T0 + (at_ms + i) * MS,
                      duration_ms * MS, i < errors, correlation_id=cid) for i in range(spans)]
        return traces_request(service, built, tenant__id=tenant)

    await store_async(wh, "traces", [
        one("ok-1", "1" * 32, 1000, "orders"),
        one("slow-1", "2" * 32, 1500, "orders", duration_ms=5000),
        one("fail-1", "3" * 32, 2000, "payments", errors=1),
        one("fail-2", "4" * 32, 3000, "orders", errors=2),
        one("other/1", "5" * 32, 3500, "globex-web", errors=3, spans=3, tenant="globex"),
    ], "spans")
    await store_async(wh, "logs", [logs_request("payments", [
        log_record("3" * 32, sid("3" * 32, 0), "charge failed", T0 + 2001 * MS, 17, correlation_id="fail-1")])],
        "logs")


async def listed(client: httpx.AsyncClient, key: str | None = None, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await client.get("/api/v1/correlations", params={**WINDOW, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_correlations_recent_failing_slow(warehouse: Warehouse) -> None:
    await store_correlations(warehouse)
    async with make_client(warehouse) as client:
        recent = await listed(client)
        assert [c["correlation_id"] for c in recent["correlations"]] == ["other/1", "fail-2", "fail-1", "slow-1",
                                                                          "ok-1"]
        failing = await listed(client, sort="failing")
        assert [(c["correlation_id"], c["error_count"]) for c in failing["correlations"]] == [
            ("other/1", 3), ("fail-2", 2), ("fail-1", 2), ("slow-1", 0), ("ok-1", 0)]
        slow = await listed(client, sort="slow", limit="2")
        assert [c["correlation_id"] for c in slow["correlations"]] == ["slow-1", "other/1"]
        assert slow["next_offset"] == 2 and slow["sort"] == "slow"
        fail_1 = next(c for c in failing["correlations"] if c["correlation_id"] == "fail-1")
        assert fail_1 == {
            "correlation_id": "fail-1", "first_seen": "2025-11-23T00:00:02.000000000Z",
            "last_seen": "2025-11-23T00:00:02.001000000Z", "duration_ms": 1.0, "services": ["payments"],
            "trace_count": 1, "span_count": 2, "log_count": 1, "error_count": 2, "error_spans": 1, "error_logs": 1,
            "max_span_duration_ms": 10.0, "link": "/api/v1/correlate/fail-1"}
        assert [c["correlation_id"] for c in (await listed(client, service="payments"))["correlations"]] == ["fail-1"]
        later = await listed(client, start=str(T0 // MS + 2500))
        assert [c["correlation_id"] for c in later["correlations"]] == ["other/1", "fail-2"]
        other = next(c for c in recent["correlations"] if c["correlation_id"] == "other/1")
        followed = await client.get(other["link"])
        assert other["link"] == "/api/v1/correlate/other%2F1" and followed.json()["correlation_id"] == "other/1"
        bad = await client.get("/api/v1/correlations", params={"sort": "worst"})
        assert (bad.status_code, bad.json()["parameter"]) == (400, "sort")


async def test_correlations_are_a_tenants_own(warehouse: Warehouse) -> None:
    await store_correlations(warehouse)
    async with make_client(warehouse, {"key-acme": "acme", "key-globex": "globex"}) as client:
        acme = await listed(client, "key-acme", sort="failing")
        assert [c["correlation_id"] for c in acme["correlations"]] == ["fail-2", "fail-1", "slow-1", "ok-1"]
        globex = await listed(client, "key-globex")
        assert [c["correlation_id"] for c in globex["correlations"]] == ["other/1"]
