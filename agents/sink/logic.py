"""How the sink cuts what it read into inserts (pure): per partition, in offset order, each
insert at most ``max_rows`` rows (a record larger than that is an insert of its own)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from schemas.enriched import EnrichedRecord


class _Message(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...


class _Event(Protocol):
    @property
    def message(self) -> _Message: ...


E = TypeVar("E", bound=_Event)


def by_partition(events: Iterable[E]) -> dict[tuple[str, int], list[E]]:
    """Events (a Faust event, or anything with ``.message.topic`` and ``.message.partition``)
    per (topic, partition), each list in the order read."""
    groups: dict[tuple[str, int], list[E]] = {}
    for event in events:
        groups.setdefault((event.message.topic, event.message.partition), []).append(event)
    return groups


def chunk_by_rows(records: Sequence[tuple[E, EnrichedRecord]], max_rows: int) -> list[list[tuple[E, EnrichedRecord]]]:
    """``records`` cut into runs of consecutive records of at most ``max_rows`` rows."""
    chunks: list[list[tuple[E, EnrichedRecord]]] = []
    current: list[tuple[E, EnrichedRecord]] = []
    rows = 0
    for item in records:
        size = item[1].rows
        if current and rows + size > max_rows:
            chunks.append(current)
            current, rows = [], 0
        current.append(item)
        rows += size
    if current:
        chunks.append(current)
    return chunks
