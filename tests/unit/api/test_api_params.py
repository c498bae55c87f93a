"""Parameter parsing: each rule, and the parameter named in every refusal."""
from __future__ import annotations

import pytest

from api import params as p

LIMITS = p.Limits()
NOW_NS = 1_800_000_000 * p.NS_PER_S


@pytest.mark.parametrize("value, expected_ns", [
    ("2026-01-31T12:00:00Z", 1_769_860_800 * p.NS_PER_S),
    ("2026-01-31T12:00:00", 1_769_860_800 * p.NS_PER_S),
    ("2026-01-31 12:00:00.5Z", 1_769_860_800 * p.NS_PER_S + 500_000_000),
    ("2026-01-31T12:00:00.123456789Z", 1_769_860_800 * p.NS_PER_S + 123_456_789),
    ("2026-01-31T14:00:00+02:00", 1_769_860_800 * p.NS_PER_S),
    ("2026-01-31T07:30:00-0430", 1_769_860_800 * p.NS_PER_S),
    ("1769860800000", 1_769_860_800 * p.NS_PER_S),
    ("0", 0),
], ids=["zulu", "naive-is-utc", "space-and-fraction", "nanoseconds", "offset", "offset-no-colon", "epoch-ms",
        "epoch-zero"])
def test_timestamps_parse_to_unix_ns(value: str, expected_ns: int) -> None:
    assert p.timestamp_ns(value, "start") == expected_ns


@pytest.mark.parametrize("value", [
    "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "1969-12-31T23:59:59Z", "2026-01-01", "yesterday",
    "2026-01-01T00:00:00.1234567890Z", "12345678901234", "-1", "2026-01-01T24:00:00Z", "' OR 1=1 --",
], ids=["feb-30", "month-13", "before-epoch", "date-only", "word", "ten-decimals", "epoch-too-long", "negative",
        "hour-24", "injection"])
def test_bad_timestamps_name_the_parameter(value: str) -> None:
    with pytest.raises(p.ParamError) as err:
        p.timestamp_ns(value, "end")
    assert err.value.parameter == "end"


def test_time_range_defaults_and_caps() -> None:
    assert p.time_range({}, LIMITS, NOW_NS) == p.TimeRange(NOW_NS - 3600 * p.NS_PER_S, NOW_NS)
    assert p.optional_time_range({}, LIMITS, NOW_NS) is None
    with pytest.raises(p.ParamError, match="start: must be before end"):
        p.time_range({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, LIMITS, NOW_NS)
    with pytest.raises(p.ParamError, match="longer than 604800 s"):
        p.time_range({"start": "2026-01-01T00:00:00Z", "end": "2026-01-09T00:00:00Z"}, LIMITS, NOW_NS)


@pytest.mark.parametrize("parse, value, ok", [
    (p.trace_id, "4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e4736"),
    (p.trace_id, "0" * 32, None),
    (p.trace_id, "4bf92f3577b34da6", None),
    (p.correlation_id, "order-7f3a9c", "order-7f3a9c"),
    (p.correlation_id, "olly-mk2b1c-1a2b3c4d", "olly-mk2b1c-1a2b3c4d"),
    (p.correlation_id, "olly-bad", None),
    (p.correlation_id, "x" * 129, None),
    (p.correlation_id, "a;b", None),
    (lambda v, n: p.name_value(v, n), "payment-service", "payment-service"),
    (lambda v, n: p.name_value(v, n), "http.server.request.duration", "http.server.request.duration"),
    (lambda v, n: p.name_value(v, n), "my--service", None),
    (lambda v, n: p.name_value(v, n), "-leading", None),
    (lambda v, n: p.name_value(v, n), "a" * 257, None),
    (lambda v, n: p.text_value(v, n), "card declined", "card declined"),
    (lambda v, n: p.text_value(v, n), "olly-abc", "olly-abc"),
    (lambda v, n: p.text_value(v, n), "' OR 1=1 --", None),
    (lambda v, n: p.text_value(v, n), "<b>", None),
    (lambda v, n: p.text_value(v, n), "line\nbreak", None),
], ids=["trace-upper", "trace-zero", "trace-short", "cid", "cid-generated", "cid-bad-generated", "cid-long",
        "cid-sql", "name", "metric-name", "name-dashes", "name-leading-dash", "name-long", "text", "text-olly-prefix",
        "text-sql", "text-markup", "text-control"])
def test_values_are_checked(parse: object, value: str, ok: str | None) -> None:
    if ok is not None:
        assert parse(value, "x") == ok  # type: ignore[operator]
    else:
        with pytest.raises(p.ParamError) as err:
            parse(value, "x")  # type: ignore[operator]
        assert err.value.parameter == "x"


@pytest.mark.parametrize("query, parameter", [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "1e3"}, "limit"),
    ({"offset": "-1"}, "offset"), ({"offset": "10001"}, "offset"),
], ids=["limit-zero", "limit-over", "limit-exponent", "offset-negative", "offset-over"])
def test_pages_are_capped(query: dict[str, str], parameter: str) -> None:
    with pytest.raises(p.ParamError) as err:
        p.page(query, LIMITS)
    assert err.value.parameter == parameter


def test_page_defaults_and_durations() -> None:
    assert p.page({}, LIMITS) == p.Page(100, 0)
    assert p.page({"limit": "1000", "offset": "10000"}, LIMITS) == p.Page(1000, 10000)
    assert p.duration_ns({"d": "1.5"}, "d") == 1_500_000
    assert p.duration_ns({"d": "2e3"}, "d") == 2_000_000_000
    assert p.duration_ns({}, "d") is None
    for bad in ("nan", "inf", "-1", "1e99", "0x10", "1_000"):
        with pytest.raises(p.ParamError, match="^d: "):
            p.duration_ns({"d": bad}, "d")


def test_choices_are_case_insensitive() -> None:
    assert p.choice("ERROR", "status", {"error": "error"}) == "error"
    with pytest.raises(p.ParamError, match="status: must be one of ok, error"):
        p.choice("fatal", "status", {"ok": 1, "error": 2})


def test_a_choice_may_stand_for_none() -> None:
    # /api/v1/alerts?status=all: "all" means no filter (None), and is accepted.
    assert p.choice("all", "status", {"firing": "firing", "all": None}) is None
