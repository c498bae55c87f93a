"""The correlation cache: TTL, entry and row bounds, LRU order."""
from __future__ import annotations

import pytest

from api.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(ttl_s=10, clock=clock)
    cache.put("k", "v")
    clock.now += 9.9
    assert cache.get("k") == "v"
    clock.now += 0.1
    assert cache.get("k") is None and len(cache) == 0


def test_least_recently_used_entries_go_first() -> None:
    cache: TtlCache[int] = TtlCache(ttl_s=10, max_entries=2, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_rows_are_bounded_and_oversized_entries_are_not_kept() -> None:
    cache: TtlCache[str] = TtlCache(ttl_s=10, max_rows=100, clock=Clock())
    cache.put("big", "x", rows=101)
    assert cache.get("big") is None
    cache.put("a", "x", rows=60)
    cache.put("b", "y", rows=60)
    assert (cache.get("a"), cache.get("b")) == (None, "y")
    cache.put("b", "z", rows=10)  # replacing an entry releases its rows
    cache.put("c", "w", rows=90)
    assert (cache.get("b"), cache.get("c")) == ("z", "w")


def test_a_zero_ttl_disables_the_cache_and_bad_bounds_are_refused() -> None:
    cache: TtlCache[str] = TtlCache(ttl_s=0)
    cache.put("k", "v")
    assert cache.get("k") is None
    with pytest.raises(ValueError):
        TtlCache(ttl_s=1, max_entries=0)
