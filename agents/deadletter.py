"""Dead letters: the original bytes of a record that cannot be processed, with the reason.

One path for every stage and for replay: ``DeadLetters.write`` returns once the broker
acknowledged the dead letter, so the source record may be acknowledged after it and
nothing set aside is ever lost."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import Counter

log = logging.getLogger(__name__)
MAX_REASON_BYTES = 4096
# Why a record was set aside, as a closed set (a metric label); the reason header says more.
Kind = Literal["undecodable", "refused", "too_large", "failed"]
# (key, value, headers) -> the broker's acknowledgement, once awaited twice: a Faust
# topic's send and an aiokafka producer's send both hand back a delivery future.
Send = Callable[[bytes, bytes | None, list[tuple[str, bytes]]], Awaitable[Awaitable[Any]]]


@dataclass(frozen=True)
class SourceRecord:
    """Where a record was read and its bytes: a Faust message or an aiokafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @classmethod
    def of(cls, message: Any) -> SourceRecord:
        return cls(message.topic, message.partition, message.offset, message.key, message.value)


def dead_letter_headers(record: SourceRecord, stage: str, kind: Kind, reason: str) -> list[tuple[str, bytes]]:
    """Headers naming where the record came from and why it was set aside."""
    return [
        ("ollystack.source.topic", record.topic.encode()),
        ("ollystack.source.partition", str(record.partition).encode()),
        ("ollystack.source.offset", str(record.offset).encode()),
        ("ollystack.stage", stage.encode()),
        ("ollystack.kind", kind.encode()),
        ("ollystack.reason", reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]),
    ]


class DeadLetters:
    """Writes dead letters through ``send`` and counts them by source topic, stage and kind."""

    def __init__(self, send: Send, counter: Counter) -> None:
        self._send = send
        self._counter = counter

    async def write(self, record: SourceRecord, stage: str, kind: Kind, reason: str) -> None:
        """Send the record's original key and value with the reason; return once the broker
        acknowledged it. Raises what the producer raises when it cannot deliver."""
        log.warning("dead letter", extra={"topic": record.topic, "partition": record.partition,
                                          "offset": record.offset, "stage": stage, "kind": kind,
                                          "reason": reason[:500]})
        key = f"{record.topic}:{record.partition}:{record.offset}".encode()
        delivery = await self._send(key, record.value, dead_letter_headers(record, stage, kind, reason))
        await delivery
        self._counter.labels(record.topic, stage, kind).inc()
