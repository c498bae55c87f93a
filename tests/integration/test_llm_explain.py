"""Explanations over real HTTP: the prompt carries the findings (bounded), names the findings
do not hold are flagged, and a down, slow or confused model falls back to the rules."""
from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from test_api import T0, X, insert_scenario

from api.app import create_app
from api.llm.client import LlmClient
from api.llm.explain import explain
from core.settings import ApiSettings, LlmSettings, Settings
from sinks.warehouse import Warehouse
from tests.support.openai_server import OpenAiServer, completion

API_KEY = "sk-explain-hunter2"
ROOT_SPAN, FAILING_SPAN = "a1" * 8, "a3" * 8
REQUEST_FINDINGS: dict[str, Any] = {  # the request analysis' answer
    "root_cause": {"service": "payment-service", "operation": "POST /charge", "kind": "error", "confidence": 0.92},
    "critical_path": [
        {"service": "frontend", "operation": "POST /checkout", "span_id": ROOT_SPAN, "self_time_ms": 50.0,
         "share": 0.1},
        {"service": "payment-service", "operation": "POST /charge", "span_id": FAILING_SPAN, "self_time_ms": 210.0,
         "share": 0.42}],
    "error_origin": {"service": "payment-service", "operation": "POST /charge", "span_id": FAILING_SPAN,
                     "message": "card declined", "logs": [{"timestamp": "2026-12-01T10:00:00Z",
                                                           "body": "card declined for order 7f3a9c"}]},
    "services": ["frontend", "payment-service", "inventory-service"],
    "evidence": [{"finding": "error_origin", "service": "payment-service", "span_id": FAILING_SPAN},
                 {"finding": "critical_path", "service": "frontend", "span_id": ROOT_SPAN}],
}
INCIDENT_FINDINGS: dict[str, Any] = {  # the incident analysis' answer
    "root_cause": {"service": "inventory-service", "kind": "error", "confidence": 0.8},
    "candidates": [{"service": "inventory-service", "score": 0.8, "evidence": ["error rate 40 %"]},
                   {"service": "order-service", "score": 0.3, "evidence": ["5xx after inventory"]}],
    "chain": [{"service": "inventory-service"}, {"service": "order-service"}, {"service": "api-gateway"}],
    "evidence": [{"finding": "anomaly", "service": "inventory-service"}],
}


def settings_for(api_base: str, timeout_s: float = 60.0, **more: Any) -> LlmSettings:
    return LlmSettings(model="openai/fake-model", api_base=api_base, api_key=SecretStr(API_KEY),
                       timeout_s=timeout_s, **more)


@pytest.fixture
def model() -> Iterator[OpenAiServer]:
    with OpenAiServer(lambda body: completion("{}")) as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def warm_litellm() -> None:
    """One call first: litellm's import and first request take seconds on a busy machine,
    which must not count against the short timeouts below."""
    import asyncio

    with OpenAiServer(lambda body: completion('{"summary": "warm"}')) as server:
        asyncio.run(LlmClient(settings_for(server.api_base)).complete([{"role": "user", "content": "hi"}]))


def answer(**fields: Any) -> dict[str, Any]:
    return completion(json.dumps({"summary": "payment-service declines cards.", "evidence": [],
                                  "recommendations": ["Check the card processor."], **fields}))


@pytest.mark.asyncio
async def test_the_prompt_carries_the_findings_and_the_key_goes_to_the_model_alone(
        model: OpenAiServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model.respond = lambda body: answer(evidence=[
        {"claim": "the first failing span", "service": "payment-service", "span_id": FAILING_SPAN}])
    explained = await explain(REQUEST_FINDINGS, LlmClient(settings_for(model.api_base)))
    assert explained["explained_by"] == "llm" and explained["model"] == "openai/fake-model"
    assert explained["summary"] == "payment-service declines cards."
    assert explained["evidence"] == [{"claim": "the first failing span", "service": "payment-service",
                                      "span_id": FAILING_SPAN}]
    assert explained["unsupported_claims"] == [] and explained["fallback_reason"] is None
    [request] = model.requests
    prompt = request.text
    for finding in ("payment-service", "POST /charge", FAILING_SPAN, ROOT_SPAN, "card declined", "0.92"):
        assert finding in prompt
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in prompt and API_KEY not in json.dumps(explained) and API_KEY not in caplog.text


@pytest.mark.asyncio
async def test_a_service_or_span_missing_from_the_evidence_is_flagged(model: OpenAiServer) -> None:
    model.respond = lambda body: answer(
        summary="payment-service fails because billing-service timed out (span ffffffffffffffff).",
        evidence=[{"claim": "card declines", "service": "payment-service", "span_id": FAILING_SPAN},
                  {"claim": "billing is down", "service": "billing-service"},
                  {"claim": "a retry storm", "service": "frontend", "span_id": "0123456789abcdef"}])
    explained = await explain(REQUEST_FINDINGS, LlmClient(settings_for(model.api_base)))
    assert explained["explained_by"] == "llm"
    # Evidence naming what the findings do not hold is dropped, and listed.
    assert [e["service"] for e in explained["evidence"]] == ["payment-service"]
    flagged = {(u["kind"], u["name"]) for u in explained["unsupported_claims"]}
    assert flagged == {("service", "billing-service"), ("span_id", "0123456789abcdef"),
                       ("span_id", "ffffffffffffffff")}


@pytest.mark.asyncio
async def test_the_prompt_stays_within_the_token_budget(model: OpenAiServer) -> None:
    model.respond = lambda body: answer()
    huge = {**REQUEST_FINDINGS,
            "evidence": [{"finding": "span", "service": "frontend", "span_id": f"{i:016x}", "detail": "x" * 5000}
                         for i in range(5000)]}
    settings = settings_for(model.api_base, max_prompt_tokens=1000)
    explained = await explain(huge, LlmClient(settings))
    assert explained["explained_by"] == "llm"
    chars = sum(len(m["content"]) for m in model.requests[0].body["messages"])
    assert chars <= 1000 * 4
    assert "payment-service" in model.requests[0].text and "more not shown" in model.requests[0].text


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.asyncio
async def test_a_model_that_is_down_falls_back_to_the_rules(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    explained = await explain(REQUEST_FINDINGS, LlmClient(settings_for(f"http://127.0.0.1:{closed_port()}/v1", 10)))
    assert time.monotonic() - started < 10
    assert explained["explained_by"] == "rules" and explained["model"] is None
    assert "failed" in explained["fallback_reason"] and API_KEY not in explained["fallback_reason"]
    assert "falls back to rules" in caplog.text and API_KEY not in caplog.text
    assert explained["summary"].startswith("The computed root cause: errors start in payment-service (POST /charge)")
    assert {"claim": "error_origin", "service": "payment-service", "span_id": FAILING_SPAN} in explained["evidence"]


@pytest.mark.asyncio
async def test_a_slow_model_falls_back_to_the_rules_within_the_timeout() -> None:
    with OpenAiServer(lambda body: answer(), delay_s=5) as slow:
        started = time.monotonic()
        explained = await explain(INCIDENT_FINDINGS, LlmClient(settings_for(slow.api_base, timeout_s=1)))
        elapsed = time.monotonic() - started
    assert elapsed < 4, elapsed
    assert explained["explained_by"] == "rules" and "did not answer within 1 s" in explained["fallback_reason"]
    assert "inventory-service -> order-service -> api-gateway" in explained["summary"]


@pytest.mark.asyncio
@pytest.mark.parametrize("content", ["not json at all", '{"evidence": []}', "[1, 2]", ""],
                         ids=["prose", "no-summary", "a-list", "empty"])
async def test_an_unusable_answer_falls_back_to_the_rules(model: OpenAiServer, content: str) -> None:
    model.respond = lambda body: completion(content)
    explained = await explain(REQUEST_FINDINGS, LlmClient(settings_for(model.api_base)))
    assert explained["explained_by"] == "rules" and explained["fallback_reason"]


@pytest.mark.asyncio
async def test_the_enhanced_route_explains_the_computed_analysis(warehouse: Warehouse, model: OpenAiServer) -> None:
    insert_scenario(warehouse)
    model.respond = lambda body: answer()
    for llm, explained_by in ((settings_for(model.api_base), "llm"), (LlmSettings(), "rules")):
        app = create_app(Settings(api=ApiSettings(), llm=llm), warehouse, clock_ns=lambda: T0, cache_ttl_s=0)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            plain = await client.post("/api/v1/rca", json={"correlation_id": X})
            response = await client.post("/api/v1/rca/enhanced", json={"correlation_id": X})
            alias = await client.post("/api/v1/ai/rca/enhanced", json={"correlation_id": X})
            unknown = await client.post("/api/v1/rca/enhanced", json={"correlation_id": "no-such-request"})
        assert plain.status_code == response.status_code == alias.status_code == 200, response.text
        body = response.json()
        explanation = body.pop("explanation")
        assert body == plain.json()  # the findings are the plain analysis', untouched
        assert explanation["explained_by"] == explained_by
        assert unknown.status_code == 404
    # The prompt carried the computed root cause; the model's own names were checked against
    # the evidence of this request, not of the canned findings.
    root = plain.json()["root_cause"]
    assert root["service"] in model.requests[0].text and root["operation"] in model.requests[0].text
    # Without a model, the rules cite the analysis' own evidence items.
    cited = {(e.get("service"), e.get("span_id")) for e in explanation["evidence"]}
    assert (root["service"], root["span_id"]) in cited


def test_the_model_server_also_runs_as_a_process() -> None:
    import asyncio
    import subprocess
    import sys
    from pathlib import Path

    content = json.dumps({"summary": "frontend waits on payment-service.", "evidence": [], "recommendations": []})
    process = subprocess.Popen([sys.executable, "-m", "tests.support.openai_server", "--content", content],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        client = LlmClient(settings_for(f"http://127.0.0.1:{port}/v1"))
        explained = asyncio.run(explain(REQUEST_FINDINGS, client))
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    assert explained["explained_by"] == "llm" and explained["summary"] == "frontend waits on payment-service."
