"""`ollystack alerts tail`: print alerts from the alerts topic as they arrive."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator
from typing import Literal, TextIO

import orjson

from core.errors import BrokerUnavailableError, DecodeError
from core.settings import Settings
from schemas.alerts import Alert, decode_alert

Format = Literal["json", "table"]


def table_line(alert: Alert) -> str:
    """One short line: when, status, severity, service and operation, score, correlation ID."""
    labels = alert.labels
    body = alert.to_json()
    when = body["updatedAt"] if alert.status == "firing" else body["endsAt"]
    predicted = " predicted" if labels.get("predicted") == "true" else ""
    return (f"{when} {alert.status.upper():<8} {labels.get('severity', '-'):<8} {labels.get('service', '-')} "
            f"{labels.get('operation', '*')}{predicted} score={alert.annotations.get('score', '-')} "
            f"correlation_id={alert.annotations.get('correlation_id', '-')} fingerprint={alert.fingerprint} "
            f"| {alert.annotations.get('summary', '')}")


async def alert_stream(bootstrap: str, topic: str, *, from_beginning: bool, err: TextIO | None = None,
                       client_id: str = "ollystack-alerts-tail") -> AsyncGenerator[Alert, None]:
    """Each alert on ``topic`` as it arrives, until the caller stops iterating.

    Reads without a consumer group and commits nothing: tailing never moves anyone's
    offsets. A record that is not an alert is reported on ``err`` and skipped. Raises
    BrokerUnavailableError when the broker cannot be reached."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError

    err = err or sys.stderr
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, client_id=client_id, group_id=None,
                                enable_auto_commit=False,
                                auto_offset_reset="earliest" if from_beginning else "latest")
    try:
        await consumer.start()
    except KafkaConnectionError as exc:
        raise BrokerUnavailableError(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
    try:
        while True:
            record = await consumer.getone()
            try:
                yield decode_alert(record.value or b"")
            except DecodeError as exc:
                print(f"skipped {record.topic}[{record.partition}]@{record.offset}: {exc}", file=err, flush=True)
    finally:
        await consumer.stop()


async def tail_alerts(bootstrap: str, topic: str, *, from_beginning: bool, max_alerts: int | None,
                      fmt: Format = "json", out: TextIO | None = None, err: TextIO | None = None,
                      client_id: str = "ollystack-alerts-tail") -> int:
    """Print each alert on ``topic`` (one JSON line, or a table line) until ``max_alerts``
    were printed (None: until cancelled); return how many were printed (see alert_stream)."""
    out = out or sys.stdout
    printed = 0
    if max_alerts is not None and max_alerts <= 0:
        return 0
    stream = alert_stream(bootstrap, topic, from_beginning=from_beginning, err=err, client_id=client_id)
    try:
        async for alert in stream:
            line = table_line(alert) if fmt == "table" else orjson.dumps(alert.to_json()).decode()
            print(line, file=out, flush=True)
            printed += 1
            if max_alerts is not None and printed >= max_alerts:
                break
    finally:
        await stream.aclose()
    return printed


def alerts_tail_main(settings: Settings, bootstrap: str, from_beginning: bool, max_alerts: int | None,
                     fmt: Format = "json") -> int:
    """Entry point of `ollystack alerts tail`; exit code 0 once ``max_alerts`` were printed."""
    asyncio.run(tail_alerts(bootstrap, settings.topics.alerts, from_beginning=from_beginning, max_alerts=max_alerts,
                            fmt=fmt))
    return 0
