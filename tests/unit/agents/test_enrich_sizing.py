"""Enriched records cut to fit the topic's message limit: rows spread over records, links
first, a row too large on its own shortened and marked."""
from __future__ import annotations

import orjson
import pytest

from agents.enrich.sizing import TRUNCATED_ATTRIBUTE, fit
from schemas.enriched import decode_enriched

LIMIT = 64 * 1024


def span(i: int, attribute: str = "x") -> dict[str, object]:
    return {"TraceId": "a" * 32, "SpanId": f"{i:016x}", "SpanAttributes": {"payload": attribute}, "Events.Name": []}


def link() -> dict[str, object]:
    return {"TraceId": "a" * 32, "CorrelationId": "req-1"}


def test_a_record_that_fits_is_one_record() -> None:
    fitted = fit("traces", {"otel_traces": [span(1)]}, LIMIT)
    assert len(fitted.values) == 1 and fitted.truncated_rows == 0


def test_rows_are_spread_over_records_of_the_limit_links_first() -> None:
    rows = [span(i, "y" * 2000) for i in range(100)]  # ~200 KB of JSON
    fitted = fit("traces", {"otel_traces": rows, "ollystack_trace_links": [link()]}, LIMIT)
    assert len(fitted.values) >= 4 and all(len(v) <= LIMIT for v in fitted.values)
    records = [decode_enriched(v) for v in fitted.values]
    assert list(records[0].tables)[0] == "ollystack_trace_links"
    span_ids = [r["SpanId"] for rec in records for r in rec.tables.get("otel_traces", [])]
    assert span_ids == [f"{i:016x}" for i in range(100)]
    assert fitted.truncated_rows == 0


@pytest.mark.parametrize("text", ['"' * 200_000, "\x01" * 100_000, "é" * 150_000], ids=["quotes", "controls", "utf8"])
def test_a_row_too_large_alone_is_shortened_and_says_so(text: str) -> None:
    fitted = fit("traces", {"otel_traces": [span(1), span(2, text)]}, LIMIT)
    assert all(len(v) <= LIMIT for v in fitted.values) and fitted.truncated_rows == 1
    rows = [r for v in fitted.values for r in decode_enriched(v).tables["otel_traces"]]
    assert [r["SpanId"] for r in rows] == [f"{1:016x}", f"{2:016x}"]
    shortened = rows[1]["SpanAttributes"]
    assert shortened["payload"].endswith("…") and "bytes of text dropped" in shortened[TRUNCATED_ATTRIBUTE]
    assert TRUNCATED_ATTRIBUTE not in rows[0]["SpanAttributes"]


def test_a_row_that_cannot_fit_is_an_error() -> None:
    many = {f"k{i}": "v" for i in range(20_000)}  # small values, too many of them
    with pytest.raises(ValueError, match="does not fit"):
        fit("traces", {"otel_traces": [{"SpanId": "1", "SpanAttributes": many}]}, 8 * 1024)
    assert len(orjson.dumps(many)) > 8 * 1024
