"""Tests for agents.cardinality: per-key distinct-value limits over a sliding window."""

from __future__ import annotations

import pytest

from agents.cardinality import OVERFLOW_VALUE, CardinalityLimiter
from core.errors import ConfigError

OVER = OVERFLOW_VALUE

# (admissions as (key, value, now_s), expected answers, expected overflow counts) with
# max_values_per_key=2, window_s=10, max_keys=2.
SCENARIOS = [
    pytest.param(
        [("k", "a", 0), ("k", "b", 1)],
        ["a", "b"],
        {},
        id="under-limit",
    ),
    pytest.param(
        [("k", "a", 0), ("k", "b", 1), ("k", "c", 2)],
        ["a", "b", OVER],
        {"k": 1},
        id="third-value-overflows",
    ),
    pytest.param(
        [("k", "a", 0), ("k", "b", 1), ("k", "c", 2), ("k", "a", 3), ("k", "b", 4)],
        ["a", "b", OVER, "a", "b"],
        {"k": 1},
        id="tracked-values-still-pass",
    ),
    pytest.param(
        [("k", "a", 0), ("k", "b", 1), ("k", "c", 10)],
        ["a", "b", "c"],
        {},
        id="expired-value-frees-slot-at-window",
    ),
    pytest.param(
        [("k", "a", 0), ("k", "b", 1), ("k", "c", 9.999)],
        ["a", "b", OVER],
        {"k": 1},
        id="just-inside-window-still-full",
    ),
    pytest.param(
        [("k", "a", 0), ("k", "b", 1), ("k", "a", 8), ("k", "c", 12), ("k", "b", 13)],
        ["a", "b", "a", "c", OVER],
        {"k": 1},
        id="hit-refreshes-value",
    ),
    pytest.param(
        [("k", "a", 0), ("j", "a", 0), ("k", "b", 0), ("j", "b", 0)],
        ["a", "a", "b", "b"],
        {},
        id="limits-are-per-key",
    ),
    pytest.param(
        [("k", "a", 0), ("j", "a", 0), ("x", "a", 1), ("x", "b", 2)],
        ["a", "a", OVER, OVER],
        {"x": 2},
        id="keys-beyond-max-keys-overflow",
    ),
    pytest.param(
        [("k", "a", 0), ("j", "a", 0), ("x", "a", 10)],
        ["a", "a", "a"],
        {},
        id="expired-keys-free-key-slots",
    ),
    pytest.param(
        [("k", "a", 0), ("j", "a", 5), ("x", "a", 12), ("y", "a", 13)],
        ["a", "a", "a", OVER],
        {"y": 1},
        id="only-expired-keys-are-freed",
    ),
    pytest.param(
        [("k", "a", 100), ("k", "b", 101), ("k", "c", 50), ("k", "d", 111)],
        ["a", "b", OVER, "d"],
        {"k": 1},
        id="time-going-back-counts-as-latest",
    ),
    pytest.param(
        [("k", "a", 0), ("k", "b", 0), ("k", "c", 0), ("j", "a", 0), ("j", "b", 0), ("j", "c", 0)]
        + [("x", "a", 0), ("y", "a", 0)],
        ["a", "b", OVER, "a", "b", OVER, OVER, OVER],
        {"k": 1, "j": 1, OVER: 2},
        id="overflow-counters-are-bounded",
    ),
]


@pytest.mark.parametrize(("admissions", "answers", "overflows"), SCENARIOS)
def test_admit(
    admissions: list[tuple[str, str, float]], answers: list[str], overflows: dict[str, int]
) -> None:
    limiter = CardinalityLimiter(max_values_per_key=2, window_s=10, max_keys=2)
    assert [limiter.admit(key, value, now_s) for key, value, now_s in admissions] == answers
    assert limiter.overflow_counts() == overflows


def test_limit_attributes() -> None:
    limiter = CardinalityLimiter(max_values_per_key=1, window_s=60)
    assert limiter.limit_attributes({"user": "u1", "route": "/a"}, now_s=0) == {
        "user": "u1",
        "route": "/a",
    }
    assert limiter.limit_attributes({"user": "u2", "route": "/a"}, now_s=1) == {
        "user": OVER,
        "route": "/a",
    }
    assert limiter.overflow_counts() == {"user": 1}


def test_overflow_counts_is_a_copy() -> None:
    limiter = CardinalityLimiter(max_values_per_key=1, window_s=1)
    limiter.admit("k", "a", 0)
    limiter.admit("k", "b", 0)
    limiter.overflow_counts()["k"] = 99
    assert limiter.overflow_counts() == {"k": 1}


def test_memory_stays_bounded_under_many_values() -> None:
    limiter = CardinalityLimiter(max_values_per_key=3, window_s=1_000, max_keys=5)
    for i in range(10_000):
        limiter.admit(f"key{i % 50}", f"value{i}", now_s=i / 100)
    counts = limiter.overflow_counts()
    assert len(counts) <= 6
    assert sum(counts.values()) == 10_000 - 5 * 3


BAD_ARGS = [
    pytest.param({"max_values_per_key": 0, "window_s": 1}, "max_values_per_key", id="zero-values"),
    pytest.param({"max_values_per_key": -1, "window_s": 1}, "max_values_per_key", id="neg-values"),
    pytest.param({"max_values_per_key": 1, "window_s": 0}, "window_s", id="zero-window"),
    pytest.param({"max_values_per_key": 1, "window_s": -0.5}, "window_s", id="neg-window"),
    pytest.param({"max_values_per_key": 1, "window_s": float("nan")}, "window_s", id="nan-window"),
    pytest.param({"max_values_per_key": 1, "window_s": 1, "max_keys": 0}, "max_keys", id="no-keys"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD_ARGS)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}:"):
        CardinalityLimiter(**kwargs)  # type: ignore[arg-type]
