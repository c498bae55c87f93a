"""Computed findings as a model may see them: bounded excerpts, and the names they support.

Findings are the answers of the request analysis (root_cause, critical_path, error_origin,
services, evidence) or of the incident analysis (root_cause, candidates, chain); anything
with a root_cause is taken. The excerpt keeps their shape but cuts lists and strings until
the JSON fits the prompt budget, so a prompt never carries whole tables."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# Without a tokenizer (none is downloaded), four characters count as a token.
CHARS_PER_TOKEN = 4
SPAN_ID = re.compile(r"^[0-9a-fA-F]{16}$")
TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
# Keys under which findings name services (strings, lists of strings, or objects with a name).
_SERVICE_KEYS = frozenset({"service", "services", "service_name", "caller", "callee", "from", "to", "source",
                           "target", "parent_service", "child_service", "services_touched"})
_SPAN_KEYS = frozenset({"span_id", "span_ids", "spans", "parent_span_id"})
_FIRST_ITEMS = 20
_FIRST_CHARS = 400


@dataclass(frozen=True)
class KnownNames:
    """The services, span IDs and trace IDs the findings hold: what an answer may name."""

    services: frozenset[str]
    span_ids: frozenset[str]
    trace_ids: frozenset[str]


def known_names(findings: Mapping[str, Any]) -> KnownNames:
    """Every service, span ID and trace ID named anywhere in ``findings``."""
    services: set[str] = set()
    spans: set[str] = set()
    traces: set[str] = set()

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k).lower())
                if key in _SERVICE_KEYS and k in ("name", "service") and isinstance(v, str):
                    services.add(v)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, key)
        elif isinstance(value, str):
            if key in _SERVICE_KEYS:
                services.add(value)
            if SPAN_ID.match(value) and (key in _SPAN_KEYS or "span" in key):
                spans.add(value.lower())
            elif TRACE_ID.match(value):
                traces.add(value.lower())
            elif SPAN_ID.match(value):
                spans.add(value.lower())

    walk(findings, "")
    return KnownNames(frozenset(s for s in services if s), frozenset(spans), frozenset(traces))


def _cut(value: Any, items: int, chars: int) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _cut(v, items, chars) for k, v in value.items()}
    if isinstance(value, list | tuple):
        kept = [_cut(v, items, chars) for v in list(value)[:items]]
        if len(value) > items:
            kept.append(f"... {len(value) - items} more not shown")
        return kept
    if isinstance(value, str) and len(value) > chars:
        return value[:chars] + "..."
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)[:chars]


def excerpt(findings: Mapping[str, Any], max_chars: int) -> str:
    """``findings`` as JSON of at most ``max_chars`` characters: lists and strings are cut
    (fewer items, shorter texts) until it fits, then the last keys are left out."""
    items, chars = _FIRST_ITEMS, _FIRST_CHARS
    while True:
        text = orjson.dumps(_cut(findings, items, chars), default=str).decode()
        if len(text) <= max_chars or (items == 1 and chars == 40):
            break
        items, chars = max(1, items // 2), max(40, chars // 2)
    if len(text) <= max_chars:
        return text
    kept = dict(_cut(findings, items, chars))
    while kept and len(text) > max_chars:
        kept.pop(next(reversed(kept)))
        text = orjson.dumps({**kept, "note": "some findings left out to fit the budget"}, default=str).decode()
    return text if len(text) <= max_chars else "{}"
