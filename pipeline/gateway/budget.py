"""Memory admission of the gateway: the bytes every request holds, from its first body byte
until it is answered, and the bytes handed to Kafka until they are acknowledged.

A request's body, its decompressed form, the decoded message and the records split from
it all live at once. Measured on a 13 MB request of attribute-heavy spans, the decoded
message (upb) takes 4.4 times the decompressed size and the split pieces 2 times more, so
a request reserves its body plus DECODED_FACTOR times the decompressed size. Past the
budget a request is answered 429 / RESOURCE_EXHAUSTED with a retry hint, which OTLP
clients retry; nothing is held for it."""
from __future__ import annotations

from types import TracebackType

from prometheus_client import Gauge

from pipeline.gateway.errors import OverloadedError

DECODED_FACTOR = 7


class ByteBudget:
    """Admits work while the bytes held stay under a limit; never waits."""

    def __init__(self, limit_bytes: int, gauge: Gauge) -> None:
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self._gauge = gauge

    def try_acquire(self, size_bytes: int) -> bool:
        if self.used_bytes + size_bytes > self.limit_bytes:
            return False
        self.used_bytes += size_bytes
        self._gauge.set(self.used_bytes)
        return True

    def release(self, size_bytes: int) -> None:
        self.used_bytes -= size_bytes
        self._gauge.set(self.used_bytes)


class RequestMemory:
    """The bytes one request holds; all released when the request is answered."""

    def __init__(self, budget: ByteBudget, retry_after_s: float) -> None:
        self._budget = budget
        self._retry_after_s = retry_after_s
        self.held_bytes = 0

    def take(self, size_bytes: int, what: str) -> None:
        """Hold ``size_bytes`` more; raises OverloadedError (retry later) when the gateway
        holds too much already."""
        if not self._budget.try_acquire(size_bytes):
            raise OverloadedError(
                f"the gateway holds {self._budget.used_bytes} bytes of requests, limit {self._budget.limit_bytes} "
                f"(otlp.max_inflight_bytes); {what} does not fit now: retry later", self._retry_after_s)
        self.held_bytes += size_bytes

    def __enter__(self) -> RequestMemory:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._budget.release(self.held_bytes)
        self.held_bytes = 0
