"""Explanations without a model: the rules' explanation, the excerpt's budget, and the checks
an answer goes through (pure functions, no server)."""
from __future__ import annotations

import orjson
import pytest

from api.llm.explain import build_messages, check_answer
from api.llm.findings import excerpt, known_names
from api.llm.rules import rules_explanation

SPAN = "a3" * 8
TRACE = "ab" * 16
FINDINGS = {
    "root_cause": {"service": "payment-service", "operation": "POST /charge", "kind": "latency", "confidence": 0.7},
    "critical_path": [{"service": "frontend", "operation": "POST /checkout", "span_id": "a1" * 8}],
    "services": [{"name": "inventory-service", "spans": 2}],
    "evidence": [{"finding": "slowest_self_time", "service": "payment-service", "span_id": SPAN,
                  "trace_id": TRACE}],
}


def test_known_names_are_every_service_span_and_trace_of_the_findings() -> None:
    known = known_names(FINDINGS)
    assert known.services == {"payment-service", "frontend", "inventory-service"}
    assert known.span_ids == {SPAN, "a1" * 8}
    assert known.trace_ids == {TRACE}


@pytest.mark.parametrize(("answer", "kept", "flagged"), [
    ({"summary": "payment-service is slow", "evidence": [{"claim": "c", "service": "payment-service",
                                                          "span_id": SPAN}]}, 1, set()),
    ({"summary": "s", "evidence": [{"claim": "c", "service": "ghost-service"}]}, 0, {("service", "ghost-service")}),
    ({"summary": "s", "evidence": [{"claim": "c", "service": "frontend", "span_id": "0" * 16}]}, 0,
     {("span_id", "0" * 16)}),
    ({"summary": "the cause is auth-api, trace " + "cd" * 16, "evidence": []}, 0,
     {("service", "auth-api"), ("trace_id", "cd" * 16)}),
    ({"summary": "s", "recommendations": ["restart checkout-worker"]}, 0, {("service", "checkout-worker")}),
    ({"summary": "an end-to-end read-only follow-up on inventory-service"}, 0, set()),
], ids=["supported", "unknown-service", "unknown-span", "names-in-the-summary", "names-in-recommendations",
        "ordinary-hyphenated-words"])
def test_an_answer_is_checked_against_the_findings(answer: dict[str, object], kept: int,
                                                   flagged: set[tuple[str, str]]) -> None:
    checked, unsupported = check_answer(answer, known_names(FINDINGS))
    assert len(checked["evidence"]) == kept
    assert {(u["kind"], u["name"]) for u in unsupported} == flagged


@pytest.mark.parametrize("max_chars", [300, 1000, 5000])
def test_the_excerpt_fits_its_budget_and_stays_json(max_chars: int) -> None:
    big = {**FINDINGS, "evidence": [{"service": "frontend", "detail": "x" * 1000} for _ in range(1000)]}
    text = excerpt(big, max_chars)
    assert len(text) <= max_chars
    assert isinstance(orjson.loads(text), dict)


def test_the_prompt_holds_the_findings_under_the_token_budget() -> None:
    messages = build_messages(FINDINGS, max_prompt_tokens=600)
    assert sum(len(m["content"]) for m in messages) <= 600 * 4
    assert "payment-service" in messages[1]["content"] and SPAN in messages[1]["content"]


@pytest.mark.parametrize(("findings", "summary"), [
    (FINDINGS, "The computed root cause: the latency comes from payment-service (POST /charge) with confidence 0.70."),
    ({"root_cause": {"service": "inventory-service", "kind": "error"}, "chain": ["inventory-service", "api"]},
     "The computed root cause: errors start in inventory-service. Propagation: inventory-service -> api."),
    ({"root_cause": {}, "evidence": []}, "The analysis found no root cause in the data it was given."),
    ({"root_cause": None, "evidence": "odd"}, "The analysis found no root cause in the data it was given."),
], ids=["request", "incident", "nothing-found", "lenient-about-shapes"])
def test_the_rules_explain_from_the_findings_alone(findings: dict[str, object], summary: str) -> None:
    explained = rules_explanation(findings, "no model")
    assert explained["summary"] == summary
    assert explained["explained_by"] == "rules" and explained["fallback_reason"] == "no model"
    assert explained["recommendations"]
