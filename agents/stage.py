"""What every stream stage is built with, so that the stages take the same arguments."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from agents.deadletter import DeadLetters
from agents.metrics import WorkerMetrics
from core.settings import TopicSettings
from sinks.warehouse import Warehouse


@dataclass(frozen=True)
class StageDeps:
    """The Faust app the stage registers its agents on, the topic names, the warehouse,
    the worker's metrics and its dead letters."""

    app: faust.App
    topics: TopicSettings
    warehouse: Warehouse
    metrics: WorkerMetrics
    deadletters: DeadLetters

    def topic(self, name: str) -> Any:
        """A topic of raw bytes: every record's key and value are read and written as they are."""
        return self.app.topic(name, key_serializer="raw", value_serializer="raw")


def faust_dead_letters(app: faust.App, topic: str, metrics: WorkerMetrics) -> DeadLetters:
    """Dead letters produced by the worker's own Faust producer onto ``topic``."""
    target = app.topic(topic, key_serializer="raw", value_serializer="raw")

    async def send(key: bytes, value: bytes | None, headers: list[tuple[str, bytes]]) -> Any:
        return await target.send(key=key, value=value, headers=headers)

    return DeadLetters(send, metrics.deadletters)
