"""Trace-level correlation: the best source wins, an ID only moves to a better source,
generated IDs depend on the trace alone, and counts are per record."""
from __future__ import annotations

from typing import Any

import pytest

from agents.enrich.config import EnrichConfig
from agents.enrich.logic import PRIORITY, REJECTED_REASON, TraceState, enrich_spans
from schemas.span_rows import SpanRecord

T0 = 1_700_000_000_000_000_000


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
         {"a" * 32: TraceState("olly-abc-12345678", "generated", PRIORITY["generated"], T0)}, "req-2", "attribute"),
        ([record("a" * 32, "1" * 16, correlation_id="worse")],
         {"a" * 32: TraceState("from-resource", "resource", PRIORITY["resource"], T0)}, "from-resource", "resource"),
    ],
    ids=["attribute", "resource-beats-attribute", "any-span-of-the-trace", "upgrade-from-generated", "no-downgrade"],
)
def test_the_trace_id_follows_the_best_source(records: list[SpanRecord], known: dict[str, TraceState],
                                              expected_id: str, expected_source: str) -> None:
    result = enrich_spans(records, known, EnrichConfig())
    assert {r["CorrelationId"] for r in result.rows} == {expected_id}
    state = result.trace_updates.get("a" * 32) or known["a" * 32]
    assert (state.correlation_id, state.source) == (expected_id, expected_source)


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
