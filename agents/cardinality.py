"""Bounded per-key cardinality: too many distinct values for one key become an overflow marker."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from core.errors import ConfigError

__all__ = ["OVERFLOW_VALUE", "CardinalityLimiter"]

OVERFLOW_VALUE = "__overflow__"


class CardinalityLimiter:
    """Admit at most max_values_per_key distinct values per key within a sliding window.

    A value expires once it has not been seen for window_s seconds, which frees its slot.
    Memory is bounded: at most max_keys keys with at most max_values_per_key values each,
    and at most max_keys + 1 overflow counters. Time is whatever the caller passes as
    now_s (seconds); a now_s smaller than one seen before counts as the latest one seen,
    so expiry order stays consistent. Not thread-safe: one limiter per worker task.
    """

    def __init__(self, max_values_per_key: int, window_s: float, max_keys: int = 10_000) -> None:
        """Raise ConfigError naming the parameter when a limit is not positive."""
        if max_values_per_key <= 0:
            raise ConfigError("max_values_per_key: must be > 0")
        # "not >" also refuses NaN.
        if not window_s > 0:
            raise ConfigError("window_s: must be > 0")
        if max_keys <= 0:
            raise ConfigError("max_keys: must be > 0")
        self._max_values = max_values_per_key
        self._window_s = window_s
        self._max_keys = max_keys
        # key -> (value -> last seen). Both levels are ordered oldest first, so everything
        # that expired sits at the front and is dropped without scanning the rest.
        self._keys: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()
        self._overflows: dict[str, int] = {}
        self._latest_s = float("-inf")

    def admit(self, key: str, value: str, now_s: float, occurrences: int = 1) -> str:
        """Return value if it is tracked for key or a slot is free, else OVERFLOW_VALUE.

        An admitted value is (re)marked as seen at now_s. Every OVERFLOW_VALUE answer is
        counted for key (see overflow_counts), ``occurrences`` times: the caller admits
        that many uses of the pair at once, all at now_s, and gets the answer each of
        them would have got one by one (at one now_s, an answer never changes for a
        pair once given). Keys beyond max_keys overflow every value until older keys
        expire. Raises ValueError when occurrences < 1.
        """
        if occurrences < 1:
            raise ValueError("occurrences: must be >= 1")
        now_s = max(now_s, self._latest_s)
        self._latest_s = now_s
        cutoff_s = now_s - self._window_s
        self._expire_keys(cutoff_s)
        values = self._keys.get(key)
        if values is None:
            if len(self._keys) >= self._max_keys:
                return self._overflow(key, occurrences)
            values = OrderedDict()
            self._keys[key] = values
        else:
            self._expire_values(values, cutoff_s)
        if value not in values and len(values) >= self._max_values:
            return self._overflow(key, occurrences)
        values[value] = now_s
        values.move_to_end(value)
        self._keys.move_to_end(key)
        return value

    def limit_attributes(self, attrs: Mapping[str, str], now_s: float) -> dict[str, str]:
        """Return a new dict with admit(key, value, now_s) applied to every item, in order."""
        return {key: self.admit(key, value, now_s) for key, value in attrs.items()}

    def overflow_counts(self) -> dict[str, int]:
        """Return a copy of the overflow count per key since creation.

        Once max_keys keys have counters, further keys are counted together under
        OVERFLOW_VALUE: attribute keys are untrusted input too, and one counter per key
        would be the unbounded growth this class exists to prevent.
        """
        return dict(self._overflows)

    def _overflow(self, key: str, occurrences: int) -> str:
        if key not in self._overflows and len(self._overflows) >= self._max_keys:
            key = OVERFLOW_VALUE
        self._overflows[key] = self._overflows.get(key, 0) + occurrences
        return OVERFLOW_VALUE

    def _expire_values(self, values: OrderedDict[str, float], cutoff_s: float) -> None:
        while values:
            oldest, seen_s = next(iter(values.items()))
            if seen_s > cutoff_s:
                return
            del values[oldest]

    def _expire_keys(self, cutoff_s: float) -> None:
        # A key's newest value is its last entry; when even that one is expired, the whole
        # key is, and its slot among max_keys is free again.
        while self._keys:
            key, values = next(iter(self._keys.items()))
            if values and next(reversed(values.values())) > cutoff_s:
                return
            del self._keys[key]
