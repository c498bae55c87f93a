"""Trace-level correlation: the best source wins, an ID only moves to a better source,
generated IDs depend on the trace alone, and counts are per record."""
from __future__ import annotations

from typing import Any

import pytest

from agents.correlation import (
    REJECTED_REASON_ATTRIBUTE,
    REJECTED_VALUE_ATTRIBUTE,
    SOURCE_PRIORITY,
    CorrelationConfig,
)
from agents.enrich.config import EnrichConfig
from agents.enrich.logic import EnrichResult, TraceState, enrich_spans
from core.settings import load_settings
from schemas.span_rows import SpanRecord

T0 = 1_700_000_000_000_000_000
A = ("", "a" * 32)  # (tenant, trace): no tenant


def spans_of(result: EnrichResult) -> list[dict[str, Any]]:
    return result.tables["otel_traces"]


def links_of(result: EnrichResult) -> list[dict[str, Any]]:
    return result.tables.get("ollystack_trace_links", [])


def record(trace: str, span: str, ts: int = T0, resource: dict[str, Any] | None = None, **attrs: Any) -> SpanRecord:
    row = {"TraceId": trace, "SpanId": span, "Timestamp": ts, "SpanAttributes": {k: str(v) for k, v in attrs.items()},
           "CorrelationId": ""}
    return SpanRecord(row, resource or {}, dict(attrs))


@pytest.mark.parametrize(
    ("records", "known", "expected_id", "expected_source"),
    [
        ([record("a" * 32, "1" * 16, correlation_id="req-1")], {}, "req-1", "attribute"),
        ([record("a" * 32, "1" * 16, resource={"correlation_id": "res-1"}, correlation_id="req-1")],
         {}, "res-1", "resource"),
        ([record("a" * 32, "1" * 16), record("a" * 32, "2" * 16, correlation_id="late-root")],
         {}, "late-root", "attribute"),
        ([record("a" * 32, "1" * 16, correlation_id="req-2")],
         {A: TraceState("olly-abc-12345678", "generated", SOURCE_PRIORITY["generated"], T0)}, "req-2", "attribute"),
        ([record("a" * 32, "1" * 16, correlation_id="worse")],
         {A: TraceState("from-resource", "resource", SOURCE_PRIORITY["resource"], T0)}, "from-resource", "resource"),
    ],
    ids=["attribute", "resource-beats-attribute", "any-span-of-the-trace", "upgrade-from-generated", "no-downgrade"],
)
def test_the_trace_id_follows_the_best_source(records: list[SpanRecord], known: dict[tuple[str, str], TraceState],
                                              expected_id: str, expected_source: str) -> None:
    result = enrich_spans(records, known, CorrelationConfig())
    assert {r["CorrelationId"] for r in spans_of(result)} == {expected_id}
    state = result.trace_updates.get(A) or known[A]
    assert (state.correlation_id, state.source) == (expected_id, expected_source)


def test_two_tenants_sharing_a_trace_id_keep_their_own_ids_and_links() -> None:
    spans = [record("a" * 32, "1" * 16, resource={"tenant.id": "acme"}, correlation_id="acme-1"),
             record("a" * 32, "2" * 16, resource={"tenant.id": "globex"})]
    known = {("globex", "a" * 32): TraceState("globex-7", "header", SOURCE_PRIORITY["header"], T0),
             ("acme", "b" * 32): TraceState("acme-2", "resource", SOURCE_PRIORITY["resource"], T0)}
    result = enrich_spans(spans, known, CorrelationConfig())
    assert [r["CorrelationId"] for r in spans_of(result)] == ["acme-1", "globex-7"]  # acme's ID does not reach globex
    assert [(link["Tenant"], link["TraceId"], link["CorrelationId"]) for link in links_of(result)] == [
        ("acme", "a" * 32, "acme-1")]
    assert set(result.trace_updates) == {("acme", "a" * 32)}


def test_generated_ids_depend_on_the_trace_alone() -> None:
    first = enrich_spans([record("b" * 32, "1" * 16)], {}, CorrelationConfig())
    again = enrich_spans([record("b" * 32, "1" * 16)], {}, CorrelationConfig())
    other = enrich_spans([record("c" * 32, "1" * 16)], {}, CorrelationConfig())
    assert (spans_of(first)[0]["CorrelationId"] == spans_of(again)[0]["CorrelationId"]
            != spans_of(other)[0]["CorrelationId"])
    assert spans_of(first)[0]["CorrelationId"].startswith("olly-")
    assert links_of(first)[0]["Source"] == "generated"


def test_counts_are_per_record_not_per_trace() -> None:
    spans = [record(f"{i:032x}", "1" * 16, correlation_id="<b>x</b>" if i == 0 else "ok-1") for i in range(1, 4)]
    spans.append(record("f" * 32, "2" * 16, correlation_id="<b>x</b>"))
    result = enrich_spans(spans, {}, CorrelationConfig())
    assert result.counts["spans"] == 4
    assert result.counts["correlation_rejected"] == 1
    assert spans_of(result)[-1]["SpanAttributes"][REJECTED_REASON_ATTRIBUTE] == "markup"


def test_a_rejected_id_is_stored_as_the_correlation_rule_escapes_it() -> None:
    hostile = "ok\x1b[31m" + "\u202e" * 100
    result = enrich_spans([record("a" * 32, "1" * 16, correlation_id=hostile)], {}, CorrelationConfig())
    attrs = spans_of(result)[0]["SpanAttributes"]
    assert attrs[REJECTED_REASON_ATTRIBUTE] == "control_char"
    stored = attrs[REJECTED_VALUE_ATTRIBUTE]
    assert stored.startswith("ok\\x1b[31m\\u202e") and len(stored) <= 256 and stored.isprintable()


def test_the_enrich_settings_decide_where_ids_are_found_and_how_long_they_may_be() -> None:
    config = EnrichConfig.from_settings(load_settings(environ={
        "OLLYSTACK_ENRICH_HEADER_NAMES": "X-Flow-ID", "OLLYSTACK_ENRICH_ID_MAX_LENGTH": "16"}))
    by_header = record("a" * 32, "1" * 16, **{"http.request.header.x-flow-id": ["flow-9"]})
    default_header = record("b" * 32, "1" * 16, **{"http.request.header.x-request-id": ["req-9"]})
    too_long = record("c" * 32, "1" * 16, correlation_id="x" * 17)
    result = enrich_spans([by_header, default_header, too_long], {}, config.correlation)
    ids = [row["CorrelationId"] for row in spans_of(result)]
    assert ids[0] == "flow-9"
    assert ids[1].startswith("olly-")  # X-Request-ID is no longer configured
    assert ids[2].startswith("olly-") and spans_of(result)[2]["SpanAttributes"][REJECTED_REASON_ATTRIBUTE] == "too_long"
