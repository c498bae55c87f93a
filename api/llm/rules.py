"""The explanation built from the findings alone, when no model answers: same shape, deterministic."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MAX_EVIDENCE = 10


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _root(findings: Mapping[str, Any]) -> Mapping[str, Any]:
    root = findings.get("root_cause")
    return root if isinstance(root, Mapping) else {}


def _summary(findings: Mapping[str, Any]) -> str:
    root = _root(findings)
    service, operation, kind = _text(root.get("service")), _text(root.get("operation")), _text(root.get("kind"))
    if not service:
        return "The analysis found no root cause in the data it was given."
    where = f"{service} ({operation})" if operation else service
    confidence = root.get("confidence")
    shown = f" with confidence {float(confidence):.2f}" if isinstance(confidence, int | float) else ""
    what = {"error": f"errors start in {where}", "latency": f"the latency comes from {where}"}.get(kind, where)
    summary = f"The computed root cause: {what}{shown}."
    origin = findings.get("error_origin")
    if isinstance(origin, Mapping) and origin.get("service"):
        message = _text(origin.get("message") or origin.get("status_message"))[:200]
        summary += f" The first failing span is in {origin['service']}" + (f": {message}." if message else ".")
    chain = findings.get("chain")
    if isinstance(chain, list) and chain:
        hops = [_text(h.get("service")) if isinstance(h, Mapping) else _text(h) for h in chain[:6]]
        summary += " Propagation: " + " -> ".join(h for h in hops if h) + "."
    return summary


def _evidence(findings: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    evidence = findings.get("evidence")
    if isinstance(evidence, Mapping) and isinstance(evidence.get("items"), list):
        evidence = evidence["items"]  # a request analysis: {services, span_ids, trace_ids, items}
    items = evidence if isinstance(evidence, list) else [evidence] if isinstance(evidence, Mapping) else []
    for item in items[:_MAX_EVIDENCE]:
        if isinstance(item, Mapping):
            claim = _text(item.get("claim") or item.get("description") or item.get("finding") or item.get("kind")
                          or item.get("detail"))
            entry: dict[str, Any] = {"claim": claim or "supporting data"}
            for key in ("service", "span_id", "trace_id"):
                if item.get(key):
                    entry[key] = _text(item[key])
            out.append(entry)
        elif item is not None:
            out.append({"claim": _text(item)[:200]})
    for candidate in (findings.get("candidates") or [])[:3]:
        if isinstance(candidate, Mapping) and candidate.get("service"):
            out.append({"claim": f"candidate score {candidate.get('score')}", "service": _text(candidate["service"])})
    return out


def _recommendations(findings: Mapping[str, Any]) -> list[str]:
    root = _root(findings)
    service = _text(root.get("service"))
    if not service:
        return ["Widen the time range or check that the request's spans were stored."]
    if root.get("kind") == "error":
        return [f"Look at the error logs and the failing spans of {service} listed in the evidence.",
                f"Check recent deploys and dependencies of {service}."]
    return [f"Look at the slowest spans of {service} on the critical path.",
            f"Compare {service}'s latency with its baseline and check its downstream calls and resources."]


def rules_explanation(findings: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The explanation of ``findings`` without a model; ``reason`` says why none answered."""
    return {"explained_by": "rules", "model": None, "summary": _summary(findings),
            "evidence": _evidence(findings), "recommendations": _recommendations(findings),
            "unsupported_claims": [], "fallback_reason": reason}
