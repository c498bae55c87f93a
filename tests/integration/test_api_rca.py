"""Request analysis through HTTP on real chDB rows: the scenario of the endpoint tests
(tests/integration/test_api.py), tenancy, and bad bodies."""
from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from test_api import (  # the scenario of the endpoint tests (same folder)
    T0,
    TRACE_A,
    TRACE_E,
    X,
    Y,
    insert_scenario,
    iso,
    make_app,
    make_client,
)

from sinks.warehouse import Warehouse

TRACE_B = "b" * 32


async def post(client: httpx.AsyncClient, body: Any, expect: int = 200, path: str = "/api/v1/rca",
               **headers: str) -> Any:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


@pytest.mark.asyncio
async def test_a_correlation_id_is_analysed_over_all_its_traces(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    async with make_client(warehouse) as client:
        found = await post(client, {"correlation_id": X})
        for path in ("/api/v1/analyze", "/api/v1/ai/rca", "/api/v1/ai/analyze"):
            assert await post(client, {"correlation_id": X}, path=path) == found
    assert (found["correlation_id"], found["trace_ids"]) == (X, sorted([TRACE_A, TRACE_B]))
    # Trace A: the root waits on the charge call, then stock; the retry (trace B) ends last.
    assert [(s["span_id"][:2], s["self_time_ms"]) for s in found["critical_path"]] == [
        ("a1", 150.0), ("a2", 50.0), ("a3", 210.0), ("a4", 40.0), ("a5", 50.0), ("b1", 80.0)]
    assert found["critical_path_ms"] == 580.0
    origin = found["error_origin"]
    assert (origin["span_id"], origin["service"], origin["message"]) == ("a3" * 8, "payment-service", "card declined")
    assert [(entry["timestamp"], entry["body"]) for entry in origin["logs"]] == [
        (iso(200), "card declined for order 7f3a9c")]
    assert found["root_cause"] == {"service": "payment-service", "operation": "POST /charge", "kind": "error",
                                   "confidence": 1.0, "span_id": "a3" * 8, "trace_id": TRACE_A}
    assert found["findings"][1]["kind"] == "latency" and found["findings"][1]["span_id"] == "a3" * 8
    exemplars = [item for item in found["evidence"]["items"] if item["type"] == "exemplar"]
    assert [(e["span_id"], e["description"]) for e in exemplars] == [("a3" * 8, "http.server.request.duration = 250")]
    assert found["evidence"]["services"] == ["frontend", "inventory-service", "payment-service"]


@pytest.mark.asyncio
async def test_a_trace_id_is_analysed_alone_under_its_correlation_id(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    async with make_client(warehouse) as client:
        found = await post(client, {"trace_id": TRACE_A.upper()}, path="/api/v1/analyze")
    assert (found["correlation_id"], found["trace_ids"]) == (X, [TRACE_A])
    assert [s["span_id"][:2] for s in found["critical_path"]] == ["a1", "a2", "a3", "a4", "a5"]
    assert found["critical_path_ms"] == 500.0 and found["error_origin"]["span_id"] == "a3" * 8


@pytest.mark.asyncio
async def test_a_tenant_analyses_only_its_own_requests(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)  # tenant acme
    async with make_client(warehouse, {"key-acme": "acme", "key-globex": "globex"}) as client:
        for body in ({"correlation_id": X}, {"trace_id": TRACE_A}):
            missing = await post(client, body, 404, **{"X-API-Key": "key-globex"})
            assert missing["error"] == "not_found"
            assert (await post(client, body, **{"X-API-Key": "key-acme"}))["error_origin"] is not None
        assert (await client.post("/api/v1/rca", json={"correlation_id": X})).status_code == 401


def test_real_answers_match_the_documented_schema(warehouse: Warehouse) -> None:
    # Generated bodies almost never name a stored request, so the 200 schema is checked here
    # on answers with and without an error origin, by correlation ID and by trace.
    insert_scenario(warehouse)
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(warehouse))
    for body in ({"correlation_id": X}, {"correlation_id": Y}, {"trace_id": TRACE_A}, {"trace_id": TRACE_E}):
        case = schema["/api/v1/rca"]["POST"].Case(body=body)
        response = case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                                  response_schema_conformance])
        assert response.status_code == 200, body
        assert (response.json()["error_origin"] is None) == (body.get("correlation_id") == Y
                                                            or body.get("trace_id") == TRACE_E)
    # The incident forms, the causal chain and the explained analysis over the scenario's window.
    window = {"start": (T0 - 60 * 1_000_000_000) // 1_000_000, "end": (T0 + 600 * 1_000_000_000) // 1_000_000}
    for path, body, key in (("/api/v1/rca", window, "candidates"), ("/api/v1/causal/analyze", window, "chain"),
                            ("/api/v1/rca/enhanced", window, "explanation"),
                            ("/api/v1/rca/enhanced", {"correlation_id": X}, "explanation")):
        case = schema[path]["POST"].Case(body=body)
        response = case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                                  response_schema_conformance])
        assert response.status_code == 200 and key in response.json(), (path, response.text)


BAD_BODIES = [
    ("not JSON", b"{", "body", "not valid JSON"),
    ("empty", b"", "body", "names nothing to analyse"),
    ("an array", b"[]", "body", "must be a JSON object"),
    ("nothing named", b"{}", "body", "names nothing to analyse"),
    ("a number for an ID", b'{"correlation_id": 5}', "correlation_id", "must be a string"),
    ("a bad trace ID", b'{"trace_id": "xyz"}', "trace_id", "32 hex digits"),
    ("markup in an ID", b'{"correlation_id": "<script>alert(1)</script>"}', "correlation_id", "not a valid"),
    ("both IDs", b'{"correlation_id": "a", "trace_id": "' + b"a" * 32 + b'"}', "body", "not both"),
    ("an unknown field", b'{"correlation_id": "a", "depth": 3}', "depth", "unknown field"),
    ("an incident window too long", b'{"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}', "start",
     "longer than"),
    ("too large", b'{"correlation_id": "' + b"a" * 20_000 + b'"}', "body", "larger than"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("raw", "parameter", "words"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
async def test_bad_bodies_are_refused_naming_the_problem(warehouse: Warehouse, raw: bytes, parameter: str,
                                                         words: str) -> None:
    async with make_client(warehouse) as client:
        response = await client.post("/api/v1/rca", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()
    assert (error["error"], error["parameter"]) == ("invalid_parameter", parameter)
    assert words in error["message"]


@pytest.mark.asyncio
async def test_an_unknown_id_is_not_found(warehouse: Warehouse) -> None:
    async with make_client(warehouse) as client:
        assert (await post(client, {"correlation_id": "order-unknown"}, 404))["error"] == "not_found"
        assert (await post(client, {"trace_id": "f" * 32}, 404))["error"] == "not_found"
        assert (await client.get("/api/v1/rca")).status_code == 405
