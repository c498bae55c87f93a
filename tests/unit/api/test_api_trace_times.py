"""Time ranges of a lookup's traces: merged, widened, capped, and the SQL conditions built from them."""
from __future__ import annotations

import pytest

from api.params import NS_PER_S
from api.queries.trace_times import TraceTimes, ranges_filter, time_ranges, traces_filter
from core.errors import WarehouseError

S = NS_PER_S


@pytest.mark.parametrize("spans_s, margin_s, expected_s", [
    ([], 0, []),
    ([(100, 100)], 0, [(100, 101)]),
    ([(100, 104)], 0, [(100, 105)]),
    ([(100, 100)], 60, [(40, 161)]),
    ([(200, 210), (100, 110)], 0, [(100, 111), (200, 211)]),
    ([(100, 110), (105, 120)], 0, [(100, 121)]),
    ([(100, 110), (111, 120)], 0, [(100, 121)]),
    ([(100, 110), (112, 120)], 0, [(100, 111), (112, 121)]),
    ([(100, 100), (200, 200)], 60, [(40, 261)]),
    ([(100, 120), (105, 110)], 0, [(100, 121)]),
], ids=["none", "one-second", "a-few-seconds", "margin-both-sides", "sorted", "overlapping", "touching",
        "a-gap", "margins-overlap", "nested"])
def test_ranges_cover_every_span_second(spans_s: list[tuple[int, int]], margin_s: int,
                                        expected_s: list[tuple[int, int]]) -> None:
    assert time_ranges(spans_s, margin_s) == [(a * S, b * S) for a, b in expected_s]


def test_past_the_cap_the_closest_ranges_are_joined() -> None:
    spans_s = [(0, 0), (10, 10), (11_000, 11_000), (11_005, 11_005), (50_000, 50_000)]
    assert time_ranges(spans_s, 0, max_ranges=3) == [(0, 11 * S), (11_000 * S, 11_006 * S), (50_000 * S, 50_001 * S)]
    assert time_ranges(spans_s, 0, max_ranges=1) == [(0, 50_001 * S)]


def test_ranges_are_bound_parameters() -> None:
    sql, params = ranges_filter("logs", [(1 * S, 2 * S), (5 * S, 6 * S)])
    assert sql == ("((Timestamp >= fromUnixTimestamp64Nano({logs_from_0:Int64}) "
                   "AND Timestamp < fromUnixTimestamp64Nano({logs_to_0:Int64})) OR "
                   "(Timestamp >= fromUnixTimestamp64Nano({logs_from_1:Int64}) "
                   "AND Timestamp < fromUnixTimestamp64Nano({logs_to_1:Int64})))")
    assert params == {"logs_from_0": S, "logs_to_0": 2 * S, "logs_from_1": 5 * S, "logs_to_1": 6 * S}
    assert ranges_filter("logs", []) == ("0", {})


@pytest.mark.parametrize("times, fragments, absent", [
    (TraceTimes({}), ["0"], ["TraceId"]),
    (TraceTimes({"a": (100, 100)}), ["TraceId IN", "{spans_ids:String}", "{spans_from_0:Int64}"],
     ["spans_unknown"]),
    (TraceTimes({}, ("b",)), ["{spans_ids:String}", "(0 OR TraceId IN", "{spans_unknown:String}"],
     ["spans_from_0"]),
    (TraceTimes({"a": (100, 100)}, ("b",)), ["{spans_from_0:Int64}", "{spans_unknown:String}"], []),
], ids=["no-traces", "known-times", "logs-only-trace", "both"])
def test_traces_without_span_times_are_read_by_id_alone(times: TraceTimes, fragments: list[str],
                                                         absent: list[str]) -> None:
    sql, params = traces_filter("spans", times, 0)
    for fragment in fragments:
        assert fragment in sql
    for fragment in absent:
        assert fragment not in sql
    if times.trace_ids:
        assert params["spans_ids"] == ",".join(times.trace_ids)


def test_a_prefix_must_be_an_identifier() -> None:
    with pytest.raises(WarehouseError, match="not a plain identifier"):
        ranges_filter("x}; DROP", [(0, 1)])
