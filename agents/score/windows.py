"""Event-time bookkeeping of the score stage: the watermark and the records held for acks (pure)."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class WindowClock:
    """The watermark: the lowest event time among live partitions, minus the lateness.

    Records of one partition arrive roughly in event-time order, but partitions are read
    at different speeds (a fetch returns one partition's batch after another's), so the
    slowest partition decides which windows are complete. A partition that delivered
    nothing for ``idle_s`` of wall-clock time no longer holds the watermark back; an
    assigned partition that has not delivered yet does, until it has been idle that long."""

    def __init__(self, lateness_ns: int, idle_s: float) -> None:
        self.lateness_ns = lateness_ns
        self.idle_s = idle_s
        self._max_ns: dict[int, int] = {}
        self._arrival_s: dict[int, float] = {}
        self._assigned_s: dict[int, float] = {}

    def observe(self, partition: int, max_event_ns: int, now_s: float) -> None:
        """A record of ``partition`` arrived at wall time ``now_s`` with events up to ``max_event_ns``."""
        self._arrival_s[partition] = now_s
        if max_event_ns > self._max_ns.get(partition, -1):
            self._max_ns[partition] = max_event_ns

    def watermark_ns(self, now_s: float, assigned: Iterable[int] | None = None) -> int | None:
        """Event time up to which every window is complete; None while a live partition has no data."""
        parts = set(self._max_ns) if assigned is None else set(assigned)
        times = []
        for p in parts:
            last_s = self._arrival_s.get(p)
            if last_s is None:
                last_s = self._assigned_s.setdefault(p, now_s)
            if now_s - last_s > self.idle_s:
                continue
            if p not in self._max_ns:
                return None
            times.append(self._max_ns[p])
        if not times:
            times = [max(self._max_ns.values())] if self._max_ns else []
        return min(times) - self.lateness_ns if times else None


class HeldRecords(Generic[T]):
    """Records waiting for the windows they fed to be stored, oldest first.

    ``release`` hands back the records whose windows are all closed; past ``max_records``
    the oldest are handed back early by ``overflow`` (bounded memory over exactness)."""

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self._held: deque[tuple[int, T]] = deque()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, last_window: int, record: T) -> None:
        self._held.append((last_window, record))

    def release(self, closed_through: int) -> list[T]:
        done = [r for w, r in self._held if w <= closed_through]
        if done:
            self._held = deque((w, r) for w, r in self._held if w > closed_through)
        return done

    def overflow(self) -> list[T]:
        out = []
        while len(self._held) > self.max_records:
            out.append(self._held.popleft()[1])
        return out
