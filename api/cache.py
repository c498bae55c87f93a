"""A bounded, short-TTL, in-process cache for correlation lookups."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Least-recently-used entries expire after ``ttl_s`` seconds; at most ``max_entries``
    entries and ``max_rows`` rows (the size each entry is stored with) are kept.

    ``ttl_s`` = 0 disables the cache. Thread-safe. Data that arrives after an entry was
    stored is seen once the entry expires, which is why the TTL is short."""

    def __init__(self, ttl_s: float = 10.0, max_entries: int = 256, max_rows: int = 200_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0 or max_entries < 1 or max_rows < 1:
            raise ValueError("ttl_s must be >= 0, max_entries and max_rows >= 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_rows = max_rows
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, int, V]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> V | None:
        """The live value under ``key``, or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return found[2]

    def put(self, key: Hashable, value: V, rows: int = 1) -> None:
        """Store ``value`` (of ``rows`` rows); entries larger than max_rows are not stored."""
        if self.ttl_s == 0 or rows > self.max_rows:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (self._clock() + self.ttl_s, rows, value)
            self._rows += rows
            while len(self._entries) > self.max_entries or self._rows > self.max_rows:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        _, rows, _ = self._entries.pop(key)
        self._rows -= rows
