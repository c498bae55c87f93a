"""Trace-level correlation: the best source wins, an ID only moves to a better source,
generated IDs depend on the trace alone, and counts are per record."""
from __future__ import annotations

from typing import Any

import pytest

from agents.enrich.config import EnrichConfig
from agents.enrich.logic import PRIORITY, REJECTED_REASON, TraceState, enrich_spans
from schemas.span_rows import SpanRecord

T0 = 1_700_000_000_000_000_000
A = ("", "a" * 32)  # (tenant, trace): no tenant


def record(trace: str, span: str, ts: int = T0, resource: dict[str, Any] | None = None, **attrs: Any) -> SpanRecord:
    row = {"TraceId": trace, "SpanId": span, "Timestamp": ts, "SpanAttributes": {k: str(v) for k, v in attrs.items()},
           "CorrelationId": ""}
    return SpanRecord(row, resource or {}, dict(attrs))


@pytest.mark.parametrize(
    ("records", "known", "expected_id", "expected_source"),
    [
        ([record("a" * 32, "1" * 16, correlation_id="req-1")], {}, "req-1", "attribute"),
        ([record("a" * 32, "1" * 16, resource={"correlation_id": "res-1"}, correlation_id="req-1")], {}, "res-1", "resource"),
        ([record("a" * 32, "1" * 16), record("a" * 32, "2" * 16, correlation_id="late-root")], {}, "late-root", "attribute"),
        ([record("a" * 32, "1" * 16, correlation_id="req-2")],
         {A: TraceState("olly-abc-12345678", "generated", PRIORITY["generated"], T0)}, "req-2", "attribute"),
        ([record("a" * 32, "1" * 16, correlation_id="worse")],
         {A: TraceState("from-resource", "resource", PRIORITY["resource"], T0)}, "from-resource", "resource"),
    ],
    ids=["attribute", "resource-beats-attribute", "any-span-of-the-trace", "upgrade-from-generated", "no-downgrade"],
)
def test_the_trace_id_follows_the_best_source(records: list[SpanRecord], known: dict[tuple[str, str], TraceState],
                                              expected_id: str, expected_source: str) -> None:
    result = enrich_spans(records, known, EnrichConfig())
    assert {r["CorrelationId"] for r in result.rows} == {expected_id}
    state = result.trace_updates.get(A) or known[A]
    assert (state.correlation_id, state.source) == (expected_id, expected_source)


def test_two_tenants_sharing_a_trace_id_keep_their_own_ids_and_links() -> None:
    spans = [record("a" * 32, "1" * 16, resource={"tenant.id": "acme"}, correlation_id="acme-1"),
             record("a" * 32, "2" * 16, resource={"tenant.id": "globex"})]
    known = {("globex", "a" * 32): TraceState("globex-7", "header", PRIORITY["header"], T0),
             ("acme", "b" * 32): TraceState("acme-2", "resource", PRIORITY["resource"], T0)}
    result = enrich_spans(spans, known, EnrichConfig())
    assert [r["CorrelationId"] for r in result.rows] == ["acme-1", "globex-7"]  # acme's ID does not reach globex
    assert [(link["Tenant"], link["TraceId"], link["CorrelationId"]) for link in result.links] == [
        ("acme", "a" * 32, "acme-1")]
    assert set(result.trace_updates) == {("acme", "a" * 32)}


def test_generated_ids_depend_on_the_trace_alone() -> None:
    first = enrich_spans([record("b" * 32, "1" * 16)], {}, EnrichConfig())
    again = enrich_spans([record("b" * 32, "1" * 16)], {}, EnrichConfig())
    other = enrich_spans([record("c" * 32, "1" * 16)], {}, EnrichConfig())
    assert first.rows[0]["CorrelationId"] == again.rows[0]["CorrelationId"] != other.rows[0]["CorrelationId"]
    assert first.rows[0]["CorrelationId"].startswith("olly-")
    assert first.links[0]["Source"] == "generated"


def test_counts_are_per_record_not_per_trace() -> None:
    spans = [record(f"{i:032x}", "1" * 16, correlation_id="<b>x</b>" if i == 0 else "ok-1") for i in range(1, 4)]
    spans.append(record("f" * 32, "2" * 16, correlation_id="<b>x</b>"))
    result = enrich_spans(spans, {}, EnrichConfig())
    assert result.counts["spans"] == 4
    assert result.counts["correlation_rejected"] == 1
    assert result.rows[-1]["SpanAttributes"][REJECTED_REASON] == "markup"
