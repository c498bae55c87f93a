"""Dead letters: the original bytes of a record that cannot be processed, with the reason."""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
MAX_REASON_BYTES = 4096


def dead_letter_headers(topic: str, partition: int, offset: int, stage: str, reason: str) -> list[tuple[str, bytes]]:
    """Headers naming where the record came from and why it was set aside."""
    return [
        ("ollystack.source.topic", topic.encode()),
        ("ollystack.source.partition", str(partition).encode()),
        ("ollystack.source.offset", str(offset).encode()),
        ("ollystack.stage", stage.encode()),
        ("ollystack.reason", reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]),
    ]


async def send_dead_letter(deadletter_topic: Any, message: Any, stage: str, reason: str) -> Any:
    """Send ``message``'s original key and value to the dead-letter topic.

    Returns the delivery future: the caller acknowledges the source record only once it
    resolves, so a dead letter is never lost either."""
    log.warning("dead letter", extra={"topic": message.topic, "partition": message.partition,
                                      "offset": message.offset, "stage": stage, "reason": reason[:500]})
    return await deadletter_topic.send(
        key=f"{message.topic}:{message.partition}:{message.offset}".encode(),
        value=message.value,
        headers=dead_letter_headers(message.topic, message.partition, message.offset, stage, reason),
    )
