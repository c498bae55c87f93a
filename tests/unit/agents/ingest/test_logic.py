"""Trace-level correlation decided on the engine's facts: the best source wins, an ID only
moves to a better source, generated IDs depend on the trace alone, counts are per row."""
from __future__ import annotations

from typing import Any

import pytest

from agents.correlation import SOURCE_PRIORITY, CorrelationConfig, generated_id
from agents.ingest.logic import ClueGroup, ClueVerdict, TraceState, decide

T0 = 1_700_000_000_000_000_000
A = ("", "a" * 32)  # (tenant, trace): no tenant


def group(trace: str = "a" * 32, clue: int = 0, ts: int = T0, rows: int = 1, tenant: str = "",
          resource: dict[str, Any] | None = None, **attrs: Any) -> ClueGroup:
    return ClueGroup(tenant, trace, clue, resource or {}, attrs, None, ts, ts + 10, rows)


@pytest.mark.parametrize(
    ("groups", "known", "expected_id", "expected_source"),
    [
        ([group(correlation_id="req-1")], {}, "req-1", "attribute"),
        ([group(resource={"correlation_id": "res-1"}, correlation_id="req-1")], {}, "res-1", "resource"),
        ([group(clue=1), group(clue=2, correlation_id="late-root")], {}, "late-root", "attribute"),
        ([group(clue=1, ts=T0 + 5, correlation_id="later"), group(clue=2, correlation_id="earlier")], {},
         "earlier", "attribute"),
        ([group(correlation_id="req-2")],
         {A: TraceState("olly-abc-12345678", "generated", SOURCE_PRIORITY["generated"], T0)}, "req-2", "attribute"),
        ([group(correlation_id="worse")],
         {A: TraceState("from-resource", "resource", SOURCE_PRIORITY["resource"], T0)}, "from-resource", "resource"),
    ],
    ids=["attribute", "resource-beats-attribute", "any-group-of-the-trace", "earliest-of-one-source",
         "upgrade-from-generated", "no-downgrade"],
)
def test_the_trace_id_follows_the_best_source(groups: list[ClueGroup], known: dict[tuple[str, str], TraceState],
                                              expected_id: str, expected_source: str) -> None:
    decisions = decide(groups, known, CorrelationConfig())
    assert decisions.traces == {A: expected_id}
    state = decisions.updates.get(A) or known[A]
    assert (state.correlation_id, state.source) == (expected_id, expected_source)
    assert [link[0] for link in decisions.links] == ([A] if A in decisions.updates else [])


def test_two_tenants_sharing_a_trace_id_keep_their_own_ids_and_links() -> None:
    groups = [group(tenant="acme", correlation_id="acme-1"), group(tenant="globex", clue=2)]
    known = {("globex", "a" * 32): TraceState("globex-7", "header", SOURCE_PRIORITY["header"], T0)}
    decisions = decide(groups, known, CorrelationConfig())
    assert decisions.traces == {("acme", "a" * 32): "acme-1", ("globex", "a" * 32): "globex-7"}
    assert [(key, state.correlation_id) for key, state, _ in decisions.links] == [(("acme", "a" * 32), "acme-1")]


def test_a_generated_id_depends_on_the_trace_and_its_first_time_alone() -> None:
    decisions = decide([group(trace="b" * 32, clue=1, ts=T0 + 7), group(trace="b" * 32, clue=2, ts=T0)], {},
                       CorrelationConfig())
    state = decisions.updates[("", "b" * 32)]
    assert (state.correlation_id, state.source, state.first_seen_ns) == (generated_id("b" * 32, T0), "generated", T0)
    assert decisions.links[0][2] == T0 + 17  # last seen: the latest row of the trace
    assert decisions.counts["correlation_generated"] == 1


def test_rejections_are_counted_per_row_and_kept_on_the_clue() -> None:
    decisions = decide([group(clue=9, rows=3, correlation_id="<b>x</b>"), group(trace="c" * 32, clue=4,
                                                                                correlation_id="ok-1")],
                       {}, CorrelationConfig())
    assert decisions.counts["correlation_rejected"] == 3 and decisions.counts["correlation_rejected:markup"] == 3
    assert decisions.clues[9] == ClueVerdict("", "markup", "<b>x</b>")
    assert decisions.clues[4] == ClueVerdict("ok-1")


def test_rows_without_a_trace_keep_their_own_id_or_have_one_generated_by_the_engine() -> None:
    decisions = decide([group(trace="", clue=1, rows=2, correlation_id="own-1"), group(trace="", clue=2, rows=5)],
                       {}, CorrelationConfig())
    assert decisions.traces == {} and decisions.links == []
    assert decisions.clues == {1: ClueVerdict("own-1")}
    assert decisions.counts["correlation_generated"] == 5


def test_a_rejected_id_is_stored_as_the_correlation_rule_escapes_it() -> None:
    hostile = "ok\x1b[31m" + "\u202e" * 100
    verdict = decide([group(clue=1, correlation_id=hostile)], {}, CorrelationConfig()).clues[1]
    assert verdict.rejected_reason == "control_char"
    assert verdict.rejected_value.startswith("ok\\x1b[31m\\u202e") and len(verdict.rejected_value) <= 256
