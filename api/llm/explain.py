"""explain(): a model explains computed findings; its answer is checked against them.

The root cause is computed from the data; the model only puts it into words. The prompt
holds the findings (bounded, api/llm/findings.py) and nothing else from the warehouse. A
service, span or trace the answer names that the findings do not hold is listed under
``unsupported_claims``, and evidence items naming one are dropped. With no model, or when
the model fails, times out or answers something unusable, the explanation comes from the
findings alone (api/llm/rules.py). explain() never raises."""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import orjson

from api.llm.client import LlmClient, LlmError
from api.llm.findings import CHARS_PER_TOKEN, KnownNames, excerpt, known_names
from api.llm.rules import rules_explanation

log = logging.getLogger(__name__)
_MAX_ITEMS = 10
_MAX_TEXT_CHARS = 2000
# Hex words of span (16) and trace (32) ID length, and words shaped like a service name
# (lowercase, hyphenated, ending in a usual service suffix): names an answer may invent.
_HEX_ID = re.compile(r"\b(?:[0-9a-f]{32}|[0-9a-f]{16})\b", re.IGNORECASE)
_SERVICE_WORD = re.compile(
    r"\b[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*[-_](?:service|svc|api|gateway|server|db|database|worker|frontend|backend|"
    r"cache|queue|proxy)\b")
SYSTEM_PROMPT = (
    "You explain the computed root-cause findings of an observability system to an on-call engineer. "
    "The findings were computed from traces, logs and metrics; do not invent causes, services, spans or "
    "numbers that are not in them. Answer with one JSON object and nothing else: "
    '{"summary": "<two to four sentences>", '
    '"evidence": [{"claim": "<what supports the root cause>", "service": "<a service from the findings>", '
    '"span_id": "<a span ID from the findings, or omit>"}], '
    '"recommendations": ["<a concrete next step>"]}')


def build_messages(findings: Mapping[str, Any], max_prompt_tokens: int) -> list[dict[str, str]]:
    """The chat messages of an explanation: instructions, then the bounded findings."""
    budget = max_prompt_tokens * CHARS_PER_TOKEN - len(SYSTEM_PROMPT) - 200
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Findings (JSON):\n" + excerpt(findings, max(budget, 200))}]


def _parse_answer(content: str) -> dict[str, Any]:
    text = content.strip()
    if text.startswith("```"):  # a fenced block despite the instructions
        text = text.strip("`").removeprefix("json").strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise LlmError("the model's answer holds no JSON object")
    try:
        answer = orjson.loads(text[start:end + 1])
    except orjson.JSONDecodeError:
        raise LlmError("the model's answer is not valid JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("summary"), str) or not answer["summary"].strip():
        raise LlmError("the model's answer has no summary")
    return answer


def _unknown_words(text: str, known: KnownNames) -> list[dict[str, str]]:
    flagged: list[dict[str, str]] = []
    for word in dict.fromkeys(_HEX_ID.findall(text)):
        if word.lower() not in known.span_ids | known.trace_ids:
            flagged.append({"kind": "span_id" if len(word) == 16 else "trace_id", "name": word,
                            "reason": "not in the findings"})
    for word in dict.fromkeys(_SERVICE_WORD.findall(text)):
        if word not in known.services:
            flagged.append({"kind": "service", "name": word, "reason": "not in the findings"})
    return flagged


def check_answer(answer: Mapping[str, Any], known: KnownNames) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The answer cut to its expected fields, and the names it holds that the findings do not.

    Evidence items naming an unknown service or span are dropped (and listed); words of the
    summary and recommendations shaped like unknown IDs or service names are listed."""
    unsupported: list[dict[str, str]] = []
    evidence: list[dict[str, str]] = []
    for item in answer.get("evidence") or []:
        if not isinstance(item, Mapping):
            item = {"claim": str(item)}
        entry = {k: str(item[k])[:_MAX_TEXT_CHARS] for k in ("claim", "service", "span_id") if item.get(k)}
        bad = []
        if entry.get("service") and entry["service"] not in known.services:
            bad.append({"kind": "service", "name": entry["service"], "reason": "not in the findings' evidence"})
        if entry.get("span_id") and entry["span_id"].lower() not in known.span_ids:
            bad.append({"kind": "span_id", "name": entry["span_id"], "reason": "not in the findings' evidence"})
        if bad:
            unsupported.extend({**b, "claim": entry.get("claim", "")} for b in bad)
        elif len(evidence) < _MAX_ITEMS:
            evidence.append(entry)
    recommendations = [str(r)[:_MAX_TEXT_CHARS] for r in (answer.get("recommendations") or [])
                       if isinstance(r, str | int | float)][:_MAX_ITEMS]
    summary = str(answer["summary"])[:_MAX_TEXT_CHARS]
    seen = {(u["kind"], u["name"]) for u in unsupported}
    for flag in _unknown_words(" ".join([summary, *recommendations, *(e.get("claim", "") for e in evidence)]), known):
        if (flag["kind"], flag["name"]) not in seen:
            unsupported.append(flag)
            seen.add((flag["kind"], flag["name"]))
    return {"summary": summary, "evidence": evidence, "recommendations": recommendations}, unsupported


async def explain(findings: Mapping[str, Any], client: LlmClient | None) -> dict[str, Any]:
    """Explain ``findings`` (any mapping with ``root_cause``; see api/llm/findings.py).

    Returns {explained_by: "llm" | "rules", model, summary, evidence, recommendations,
    unsupported_claims, fallback_reason}. Never raises: without a client, or when the model
    fails or answers unusably, the explanation is built from the findings (explained_by
    "rules", fallback_reason saying why)."""
    if client is None:
        return rules_explanation(findings, "no model is configured (OLLYSTACK_LLM_MODEL)")
    try:
        reply = await client.complete(build_messages(findings, client.settings.max_prompt_tokens), json_answer=True)
        checked, unsupported = check_answer(_parse_answer(reply.content), known_names(findings))
    except LlmError as exc:
        log.warning("explanation falls back to rules: %s", exc)
        return rules_explanation(findings, str(exc))
    except Exception as exc:  # noqa: BLE001 - the explanation must never fail the analysis it explains
        # Type only: a message or traceback could echo the request, key included.
        log.error("explanation falls back to rules after an unexpected %s", type(exc).__name__)  # noqa: TRY400
        return rules_explanation(findings, f"unexpected error: {type(exc).__name__}")
    return {"explained_by": "llm", "model": client.model, **checked, "unsupported_claims": unsupported,
            "fallback_reason": None}
