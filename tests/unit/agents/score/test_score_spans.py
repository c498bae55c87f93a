"""A record's spans, column by column: how otel_traces columns are read, and how one record
folds into window aggregates (keys, counts, sketch, exemplars, late and future spans)."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from agents.score.features import WindowAggregate
from agents.score.logic import FUTURE_TOLERANCE_NS, ScoreEngine
from agents.score.spans import read_spans
from tests.support.score_points import CONFIG, MS, NOW_NS, T0, span_row, spans_table

W = CONFIG.window_ns
W0 = T0 // W  # the absolute index of window 0


def test_rows_that_cannot_be_placed_are_skipped_and_the_rest_read() -> None:
    spans = read_spans(spans_table([
        {"Timestamp": 10, "ServiceName": "checkout", "SpanName": "POST /pay", "Duration": 5 * MS,
         "StatusCode": "Error", "CorrelationId": "req-1", "TraceId": "ab" * 16,
         "ResourceAttributes": {"tenant.id": "acme"}},
        {"Timestamp": 11, "ServiceName": "checkout", "SpanName": "GET /", "Duration": 1, "StatusCode": "Ok"},
        {"Timestamp": None, "ServiceName": "checkout"},
        {"Timestamp": 0, "ServiceName": "checkout"},
        {"Timestamp": 12, "ServiceName": ""},
        {"Timestamp": 13, "ServiceName": None},
        {"Timestamp": 14, "ServiceName": "x", "StatusCode": "STATUS_CODE_ERROR", "ResourceAttributes": None},
    ]))
    tenants, services, _ = spans.key_names
    assert [(services[s], tenants[t]) for t, s, _ in spans.key_codes.tolist()] == [
        ("checkout", "acme"), ("checkout", ""), ("x", "")]
    assert spans.rows.tolist() == [0, 1, 6]
    assert spans.error.tolist() == [True, False, True]
    assert spans.duration_ns.tolist() == [5 * MS, 1, 0]
    assert spans.text("correlation_id").to_pylist() == ["req-1", "", ""]
    assert spans.text("trace_id").to_pylist() == ["ab" * 16, "", ""]


def typed(name: str, values: list[Any], kind: pa.DataType) -> dict[str, pa.Array]:
    return {name: pa.array(values, kind)}


@pytest.mark.parametrize("columns, expected", [
    (typed("Timestamp", [5, 6], pa.timestamp("us", "UTC")), {"time_ns": [5000, 6000]}),
    (typed("Timestamp", [5, -6], pa.int64()), {"time_ns": [5]}),
    ({"ServiceName": pa.array(["a", "b"]).dictionary_encode()}, {"services": ["a", "b"]}),
    ({"ServiceName": pa.array(["a", "b"], pa.large_string())}, {"services": ["a", "b"]}),
    ({"ServiceName": pa.array([b"a", b"b"], pa.binary())}, {"services": ["a", "b"]}),
    ({"ResourceAttributes": pa.MapArray.from_arrays(
        pa.array([0, 1, 3], pa.int32()), pa.array(["tenant.id", "tenant.id", "tenant.id"]).dictionary_encode(),
        pa.array(["a", "b", "c"]))}, {"tenants": ["a", "c"]}),  # a repeated key: the last value
    (typed("Duration", [-4, None], pa.int64()), {"duration_ns": [0, 0]}),
    ({"Duration": None}, {"duration_ns": [0, 0]}),
    ({"StatusCode": pa.array(["Error", "Ok"]).dictionary_encode()}, {"error": [True, False]}),
    ({"StatusCode": None, "SpanName": None}, {"error": [False, False]}),
], ids=["timestamp-us", "timestamp-int", "dictionary-text", "large-text", "binary-text", "map-dictionary-keys",
        "signed-durations", "no-duration", "dictionary-status", "no-status"])
def test_columns_are_read_whatever_their_arrow_type(columns: dict[str, pa.Array | None],
                                                    expected: dict[str, list[Any]]) -> None:
    base = spans_table([{"Timestamp": 1, "ServiceName": "a", "StatusCode": "Ok"},
                        {"Timestamp": 2, "ServiceName": "b", "StatusCode": "Ok"}])
    for name, values in columns.items():
        index = base.column_names.index(name)
        base = base.remove_column(index) if values is None else base.set_column(index, name, values)
    spans = read_spans(base)
    got = {"time_ns": spans.time_ns.tolist(), "duration_ns": spans.duration_ns.tolist(),
           "error": spans.error.tolist(),
           "services": [spans.key_names[1][s] for s in spans.key_codes[:, 1].tolist()],
           "tenants": [spans.key_names[0][t] for t in spans.key_codes[:, 0].tolist()]}
    assert {name: got[name] for name in expected} == expected


@pytest.mark.parametrize("change, column", [
    ({"Timestamp": pa.array(["later", "now"])}, "Timestamp"),
    ({"Timestamp": None}, "Timestamp"),
    ({"ServiceName": None}, "ServiceName"),
    ({"Duration": pa.array([1.5, 2.0])}, "Duration"),
    ({"ResourceAttributes": pa.array(["tenant.id=a", ""])}, "ResourceAttributes"),
], ids=["text-timestamp", "no-timestamp", "no-service", "float-duration", "text-attributes"])
def test_columns_that_cannot_be_read_are_refused_by_name_and_nothing_is_folded(
        change: dict[str, pa.Array | None], column: str) -> None:
    table = spans_table([span_row(T0, "a", "x", MS, False, "c1"), span_row(T0 + 1, "a", "x", MS, False, "c2")])
    for name, values in change.items():
        index = table.column_names.index(name)
        table = table.remove_column(index) if values is None else table.set_column(index, name, values)
    engine = ScoreEngine(CONFIG)
    with pytest.raises(ValueError, match=f"otel_traces column {column}"):
        engine.add_table(0, table, now_s=0.0, now_ns=NOW_NS)
    assert not engine.windows and engine.read_spans == 0


def window_of(engine: ScoreEngine, window: int = 0) -> dict[tuple[str, str, str], WindowAggregate]:
    return engine.windows[W0 + window]


def test_a_record_folds_into_its_operation_keys_and_its_service_wide_key() -> None:
    engine = ScoreEngine(CONFIG)
    last = engine.add_table(0, spans_table([
        span_row(T0 + 1, "a", "x", 10 * MS, True, "c0"),
        span_row(T0 + 2, "a", "y", 20 * MS, False, "c1"),
        span_row(T0 + 3, "a", "", 30 * MS, True, "c2"),  # no name: the service-wide key alone
        span_row(T0 + 4, "a", "x", 40 * MS, False, "c3", tenant="acme"),
        span_row(T0 + W + 5, "b", "x", 50 * MS, False, "c4"),  # the next window
    ]), now_s=0.0, now_ns=NOW_NS)
    assert last == W0 + 1
    counts = {key: (agg.spans, agg.errors) for key, agg in window_of(engine).items()}
    assert counts == {("", "a", ""): (3, 2), ("", "a", "x"): (1, 1), ("", "a", "y"): (1, 0),
                      ("acme", "a", ""): (1, 0), ("acme", "a", "x"): (1, 0)}
    assert {key: agg.spans for key, agg in window_of(engine, 1).items()} == {("", "b", ""): 1, ("", "b", "x"): 1}
    assert engine.read_spans == 5


def rows(*spans: tuple[int, bool, str]) -> pa.Table:
    """Spans of ("", "a", "x") in window 0: (duration ms, failed, correlation ID) each."""
    return spans_table([span_row(T0 + i, "a", "x", ms * MS, error, cid, f"trace-{cid}")
                        for i, (ms, error, cid) in enumerate(spans)])


@pytest.mark.parametrize("records, slow, failed", [
    ([rows((5, False, "c0"), (9, False, "c1"), (9, False, "c2"))], "c1", ""),
    ([rows((9, False, "c0")), rows((9, False, "c1"))], "c0", ""),
    ([rows((5, False, "c0")), rows((9, False, "c1"))], "c1", ""),
    ([rows((0, False, "c0"))], "c0", ""),
    ([rows((1, True, ""), (2, True, "c1"), (3, True, "c2"))], "c2", "c1"),
    ([rows((1, False, "c0")), rows((1, True, ""), (1, True, "c5"))], "c0", "c5"),
    ([rows((1, True, "c0")), rows((1, True, "c5"))], "c0", "c0"),
    ([rows((1, True, ""))], "", ""),
], ids=["first-of-the-slowest", "tie-across-records-keeps-the-earlier", "slower-later-record",
        "zero-duration", "first-failed-with-a-correlation-id", "failed-in-a-later-record", "earlier-record-wins",
        "failed-without-a-correlation-id"])
def test_exemplars_are_the_first_slowest_span_and_the_first_failed_one(records: list[pa.Table], slow: str,
                                                                       failed: str) -> None:
    engine = ScoreEngine(CONFIG)
    for record in records:
        engine.add_table(0, record, now_s=0.0, now_ns=NOW_NS)
    for key in (("", "a", ""), ("", "a", "x")):
        agg = window_of(engine)[key]
        assert agg.slow_exemplar[0] == slow and agg.error_exemplar[0] == failed
        assert agg.slow_exemplar[1] == (f"trace-{slow}" if slow else "trace-")


def test_the_sketch_of_a_record_is_the_sketch_of_its_spans() -> None:
    durations_ms = [1.0, 1.0, 2.0, 5.0, 100.0, 100.0, 100.0, 3600_000.0]
    engine = ScoreEngine(CONFIG)
    engine.add_table(0, spans_table([span_row(T0 + i, "a", "x", int(ms * MS), False, f"c{i}")
                                     for i, ms in enumerate(durations_ms[:3])]), now_s=0.0, now_ns=NOW_NS)
    engine.add_table(0, spans_table([span_row(T0 + i, "a", "x", int(ms * MS), False, f"c{i}")
                                     for i, ms in enumerate(durations_ms[3:])]), now_s=0.0, now_ns=NOW_NS)
    agg = window_of(engine)[("", "a", "x")]
    assert sum(agg.buckets.values()) == agg.spans == len(durations_ms)
    assert agg.quantile_ms(0.5) == pytest.approx(5.0, rel=0.02)
    assert agg.quantile_ms(1.0) == pytest.approx(3600_000.0, rel=0.02)
    assert agg.slowest_ns == 3600_000 * MS


def test_late_reread_and_future_spans_are_counted_and_the_rest_folded() -> None:
    engine = ScoreEngine(CONFIG)
    engine.restored_through = W0 + 1  # windows 0 and 1 were scored before a restart
    engine.closed_through = W0 + 3  # and windows 2 and 3 since
    future = NOW_NS + FUTURE_TOLERANCE_NS + 1
    last = engine.add_table(0, spans_table([
        span_row(T0 + 0 * W, "a", "x", MS, False, "reread"),
        span_row(T0 + 2 * W, "a", "x", MS, False, "late"),
        span_row(T0 + 3 * W, "a", "x", MS, False, "late"),
        span_row(future, "a", "x", MS, False, "future"),
        span_row(T0 + 4 * W + 7, "a", "x", MS, False, "kept"),
    ]), now_s=0.0, now_ns=NOW_NS)
    assert last == W0 + 4
    assert (engine.reread_spans, engine.late_spans, engine.future_spans, engine.read_spans) == (1, 2, 1, 5)
    assert list(engine.windows) == [W0 + 4] and window_of(engine, 4)[("", "a", "")].spans == 1
    # The partition's clock took the newest span folded in, not the future one.
    assert engine.clock.watermark_ns(now_s=0.0) == T0 + 4 * W + 7 - int(CONFIG.lateness_s * 1e9)


@pytest.mark.parametrize("limits, spans, expected", [
    ({"max_operations": 2}, [("", "a", op) for op in ["o3", "o1", "o3", "o2", "o4", "o1"]],
     {("", "a", ""): 6, ("", "a", "o3"): 2, ("", "a", "o1"): 2, ("", "a", "__overflow__"): 2}),
    ({"max_services": 1}, [("A", "s2", "x"), ("B", "s1", "x"), ("B", "s2", "x")],
     {("A", "s2", ""): 1, ("A", "s2", "x"): 1, ("B", "s1", ""): 1, ("B", "s1", "x"): 1,
      ("B", "__overflow__", ""): 1, ("B", "__overflow__", "x"): 1}),
    ({"max_tenants": 1}, [("B", "s", ""), ("A", "s", ""), ("B", "s", "")],
     {("B", "s", ""): 2, ("__overflow__", "s", ""): 1}),
], ids=["operations", "services-per-tenant", "tenants"])
def test_keys_beyond_the_limits_overflow_in_order_of_first_appearance(
        limits: dict[str, int], spans: list[tuple[str, str, str]], expected: dict[tuple[str, str, str], int]) -> None:
    engine = ScoreEngine(CONFIG.replace(**limits))
    engine.add_table(0, spans_table([span_row(T0 + i, service, op, MS, False, f"c{i}", tenant=tenant)
                                     for i, (tenant, service, op) in enumerate(spans)]), now_s=0.0, now_ns=NOW_NS)
    assert {key: agg.spans for key, agg in window_of(engine).items()} == expected


def summary(engine: ScoreEngine) -> dict[tuple[str, str, str], Any]:
    return {k: (a.spans, a.errors, a.buckets, a.slow_exemplar, a.error_exemplar) for k, a in window_of(engine).items()}
