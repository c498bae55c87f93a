"""The score engine on span tables: windows close by event time, incidents alert once, state restores."""
from __future__ import annotations

from typing import Any

import pytest

from agents.score.config import ScoreConfig
from agents.score.logic import ClosedWindows, ScoreEngine
from agents.score.windows import HeldRecords, WindowClock
from tests.support.score_points import CONFIG, NOW_NS, T0, window_rows, window_spans

NORMAL = 12  # windows before the incident; more than min_history_windows


def feed(engine: ScoreEngine, windows: range, plan: dict[str, Any], partition: int = 0) -> list[ClosedWindows]:
    """Feed each window's spans of every service (``plan``: service -> window -> kwargs), closing as we go."""
    out = []
    for w in windows:
        for service, by_window in plan.items():
            engine.add_table(partition, window_spans(w, service, **by_window(w)), now_s=0.0, now_ns=NOW_NS)
        closed = engine.close_ready(now_s=0.0)
        if closed is not None:
            out.append(closed)
    return out


def alerts_of(closed: list[ClosedWindows]) -> list[tuple[str, str, int]]:
    return [(a.labels["service"], a.status, a.updated_at_ns) for c in closed for a in c.alerts]


def window_end(w: int) -> int:
    return T0 + (w + 1) * CONFIG.window_ns


def normal(w: int) -> dict[str, Any]:
    return {}


def slow_between(first: int, last: int) -> Any:
    return lambda w: {"latency_ms": 400.0} if first <= w <= last else {}


def failing_between(first: int, last: int) -> Any:
    return lambda w: {"error_rate": 0.5} if first <= w <= last else {}


def test_a_latency_step_and_an_error_burst_alert_once_each_and_resolve() -> None:
    engine = ScoreEngine(CONFIG)
    closed = feed(engine, range(30), {"checkout": slow_between(NORMAL, NORMAL + 5),
                                      "payments": failing_between(NORMAL, NORMAL + 5), "steady": normal})
    alerts = alerts_of(closed)
    assert alerts == [
        ("checkout", "firing", window_end(NORMAL + 1)), ("payments", "firing", window_end(NORMAL + 1)),
        ("checkout", "resolved", window_end(NORMAL + 8)), ("payments", "resolved", window_end(NORMAL + 8))]
    fired = {a.labels["service"]: a for c in closed for a in c.alerts if a.status == "firing"}
    assert fired["checkout"].annotations["feature"].startswith("latency")
    assert fired["payments"].annotations["feature"] == "error_rate"
    # The exemplar is an offending span of the incident: a slow one, a failed one.
    spans = {r["CorrelationId"]: r for w in range(NORMAL, NORMAL + 2)
             for r in window_rows(w, "checkout", latency_ms=400.0) + window_rows(w, "payments", error_rate=0.5)}
    assert spans[fired["checkout"].annotations["correlation_id"]]["Duration"] > 400 * 1_000_000
    assert spans[fired["payments"].annotations["correlation_id"]]["StatusCode"] == "Error"
    rows = [r for c in closed for r in c.rows]
    assert {r["SpanName"] for r in rows if r["ServiceName"] == "steady"} == {"", "GET /a", "POST /b"}
    assert max(r["Score"] for r in rows if r["ServiceName"] == "steady") < CONFIG.threshold


def test_windows_wait_for_the_slowest_partition_and_late_spans_are_counted() -> None:
    engine = ScoreEngine(CONFIG)
    for w in range(5):
        engine.add_table(0, window_spans(w, "a"), now_s=0.0, now_ns=NOW_NS)
    engine.add_table(1, window_spans(0, "a"), now_s=0.0, now_ns=NOW_NS)
    closed = engine.close_ready(now_s=0.0)
    assert closed is None  # partition 1 is still in window 0 (plus lateness)
    engine.add_table(1, window_spans(3, "a"), now_s=0.0, now_ns=NOW_NS)
    closed = engine.close_ready(now_s=0.0)
    assert closed is not None and closed.closed_through == (T0 // CONFIG.window_ns) + 2
    assert engine.add_table(1, window_spans(1, "a"), now_s=0.0, now_ns=NOW_NS) == -1
    assert engine.late_spans == 40


def test_an_idle_partition_stops_holding_the_watermark_back() -> None:
    clock = WindowClock(lateness_ns=0, idle_s=30.0)
    clock.observe(0, 100, now_s=0.0)
    clock.observe(1, 500, now_s=0.0)
    assert clock.watermark_ns(now_s=10.0) == 100
    clock.observe(1, 900, now_s=40.0)
    assert clock.watermark_ns(now_s=40.0) == 900
    assert clock.watermark_ns(now_s=10.0, assigned={0, 1, 2}) is None  # 2 assigned, nothing from it yet
    assert clock.watermark_ns(now_s=45.0, assigned={0, 1, 2}) == 900


def test_spans_from_the_far_future_are_dropped() -> None:
    engine = ScoreEngine(CONFIG)
    assert engine.add_table(0, window_spans(0, "a"), now_s=0.0, now_ns=T0 - 2 * 3600 * 10**9) == -1
    assert engine.future_spans == 40 and not engine.windows
    assert engine.clock.watermark_ns(now_s=0.0) is None  # the partition's clock saw no span


def test_a_service_that_stops_sending_alerts_on_throughput() -> None:
    engine = ScoreEngine(CONFIG)
    stops = NORMAL
    closed = feed(engine, range(NORMAL + 6), {"a": normal})
    closed += feed(engine, range(NORMAL, NORMAL + 6),
                   {"a": lambda w: {"spans": 40 if w < stops else 0}, "b": normal})
    closed += feed(engine, range(NORMAL + 6, NORMAL + 10), {"b": normal})
    fired = [a for c in closed for a in c.alerts if a.labels["service"] == "a"]
    assert [a.status for a in fired] == ["firing"]
    assert fired[0].annotations["feature"] == "throughput" and "correlation_id" not in fired[0].annotations


def test_operations_beyond_the_limit_share_the_overflow_key() -> None:
    config = CONFIG.replace(max_operations=2)
    engine = ScoreEngine(config)
    engine.add_table(0, window_spans(0, "a", operations=("o1", "o2", "o3", "o4")), now_s=0.0, now_ns=NOW_NS)
    keys = {k for aggs in engine.windows.values() for k in aggs}
    assert keys == {("", "a", ""), ("", "a", "o1"), ("", "a", "o2"), ("", "a", "__overflow__")}


def test_restore_from_stored_rows_continues_like_the_engine_that_wrote_them() -> None:
    plan = {"checkout": slow_between(NORMAL + 3, NORMAL + 8), "steady": normal}
    live = ScoreEngine(CONFIG)
    first = feed(live, range(NORMAL + 4), plan)  # stops one window into a pending run
    rows = [r for c in first for r in c.rows]
    restored = ScoreEngine(CONFIG)
    restored.restore(rows, live.open_alerts())
    assert restored.closed_through == live.closed_through
    # Every detector is rebuilt exactly: level, spread, seasons, evidence, frozen windows.
    assert {k: vars(d) for k, d in restored.detectors.items()} == {k: vars(d) for k, d in live.detectors.items()}
    # Records of windows scored before the restart, read again, are skipped and not late.
    restored.add_table(0, window_spans(NORMAL, "steady"), now_s=0.0, now_ns=NOW_NS)
    assert (restored.reread_spans, restored.late_spans) == (40, 0)
    # Both engines continue from the same records (the open window's are read again).
    pending = {w: aggs for w, aggs in live.windows.items()}
    restored.windows = {w: dict(aggs) for w, aggs in pending.items()}
    rest = range(NORMAL + 4, NORMAL + 14)
    assert alerts_of(feed(restored, rest, plan)) == alerts_of(feed(live, rest, plan)) != []


def test_held_records_are_released_when_their_windows_close() -> None:
    held: HeldRecords[str] = HeldRecords(max_records=3)
    for window, record in [(5, "a"), (7, "b"), (5, "c"), (6, "d")]:
        held.hold(window, record)
    assert held.overflow() == ["a"]
    assert held.release(5) == ["c"]
    assert held.release(7) == ["b", "d"] and len(held) == 0


@pytest.mark.parametrize("change, field", [
    ({"window_s": 0}, "score.window_s"), ({"threshold": -1.0}, "score.threshold"),
    ({"critical_threshold": 2.0}, "score.critical_threshold"),
    ({"min_history_windows": 50}, "score.min_history_windows"),
    ({"alertmanager_url": "ftp://am"}, "score.alertmanager_url"), ({"lateness_s": -1.0}, "score.lateness_s"),
    ({"season_alpha": float("nan")}, "score.season_alpha"), ({"two_sided": "latency"}, "score.two_sided"),
    ({"seasons_s": (0,)}, "score.seasons_s"),
    ({"bogus": 1}, "score.bogus"), ({"predict_rules": ("p99>1",)}, "score.predict_rules"),
], ids=["window", "threshold", "critical", "history", "alertmanager-scheme", "lateness", "nan", "two-sided-name",
        "season", "unknown",
        "predict-rule"])
def test_config_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        ScoreConfig.of(**change)


def test_a_service_gone_for_good_has_its_alert_resolved_when_it_is_forgotten() -> None:
    config = CONFIG.replace(cardinality_window_s=300.0)  # forget after 50 quiet windows
    engine = ScoreEngine(config)
    closed = feed(engine, range(NORMAL), {"a": normal, "b": normal})
    closed += feed(engine, range(NORMAL, NORMAL + 70), {"b": normal})
    statuses = [(a.status, a.annotations["feature"]) for c in closed for a in c.alerts if a.labels["service"] == "a"]
    assert statuses == [("firing", "throughput"), ("resolved", "throughput")]
    assert not [k for k in engine.detectors if k[1] == "a"] and ("", "a") not in engine.tracker.states


def test_settings_give_the_config_and_its_links() -> None:
    from core.settings import Settings

    config = ScoreConfig.from_settings(Settings.model_validate({"host": "10.0.0.5", "api": {"port": 9000}}))
    assert config.api_url == "http://10.0.0.5:9000" and config.window_s == 60


def test_a_lasting_level_shift_alerts_once_then_is_annotated_once_and_resolves() -> None:
    config = CONFIG.replace(max_frozen_windows=8)
    engine = ScoreEngine(config)
    closed = feed(engine, range(40), {"checkout": lambda w: {"latency_ms": 120.0} if w >= NORMAL else {}})
    assert [(s, status) for s, status, _ in alerts_of(closed)] == [("checkout", "firing"), ("checkout", "resolved")]
    shifts = [r for c in closed for r in c.rows if r["Reason"] == "level_shift" and r["SpanName"] == ""]
    assert len(shifts) == 1 and shifts[0]["Learned"] == 2
    assert shifts[0]["Detail"].startswith("level shift: ") and "learned after 8 windows" in shifts[0]["Detail"]
