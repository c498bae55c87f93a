"""Support for tests and benchmarks: per-run raw topics, and reading records back from them."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer

from core.settings import KafkaSettings, OtlpSettings, Settings, TopicSettings
from pipeline.gateway.logic import SHAPES, Signal, count_items
from pipeline.gateway.service import Gateway, build_gateway
from pipeline.topics import TopicSpec, ensure_topics


@dataclass(frozen=True)
class RawRecord:
    """One record read back from a raw topic, its value decoded."""

    topic: str
    partition: int
    key: bytes | None
    request: Any


async def create_raw_topics(bootstrap: str, prefix: str, partitions: int = 3) -> TopicSettings:
    """Raw topics of our own (``<prefix>_spans`` ...), created on the broker."""
    topics = TopicSettings(spans=f"{prefix}_spans", logs=f"{prefix}_logs",
                           metrics=f"{prefix}_metrics", partitions=partitions)
    specs = [TopicSpec(name, partitions, 1, "test raw topic")
             for name in (topics.spans, topics.logs, topics.metrics)]
    await ensure_topics(bootstrap, specs)
    return topics


def gateway_settings(topics: TopicSettings, kafka: dict[str, Any] | None = None, **otlp: Any) -> Settings:
    """Settings for a gateway on free ports writing to ``topics``; ``kafka`` and ``otlp``
    override their sections."""
    return Settings(otlp=OtlpSettings(**{"grpc_port": 0, "http_port": 0, **otlp}), topics=topics,
                    kafka=KafkaSettings(**(kafka or {})))


@contextlib.asynccontextmanager
async def running_gateway(bootstrap: str, prefix: str, kafka: dict[str, Any] | None = None,
                          **otlp: Any) -> AsyncIterator[Gateway]:
    """A started gateway on free ports with raw topics of its own (``gateway.config`` names
    them); stopped on exit."""
    topics = await create_raw_topics(bootstrap, prefix)
    gateway = build_gateway(gateway_settings(topics, kafka, **otlp), bootstrap)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def read_raw(bootstrap: str, topic: str, signal: Signal, *, until_items: int,
                   timeout_s: float = 30.0) -> list[RawRecord]:
    """Every record of ``topic`` from the beginning, read until they hold at least
    ``until_items`` items (spans, log records, data points) or ``timeout_s`` passed,
    then for one more short poll, so an extra record would be seen too."""
    # No consumer group: every partition is assigned at once, no group coordinator needed.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    out: list[RawRecord] = []
    items = 0
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        while items < until_items and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for rec in records:
                    request = SHAPES[signal].request_type.FromString(rec.value)
                    items += count_items(signal, request)
                    out.append(RawRecord(rec.topic, rec.partition, rec.key, request))
        for records in (await consumer.getmany(timeout_ms=300)).values():
            for rec in records:
                out.append(RawRecord(rec.topic, rec.partition, rec.key,
                                     SHAPES[signal].request_type.FromString(rec.value)))
    finally:
        await consumer.stop()
    return out



def sdk_exporters(protocol: Literal["grpc", "http"], gzip: bool, gateway: Gateway,
                  timeout_s: float = 10.0, headers: dict[str, str] | None = None) -> tuple[Any, Any, Any]:
    """The OpenTelemetry SDK's span, log and metric OTLP exporters, pointed at ``gateway``.

    Needs the opentelemetry-exporter-otlp packages (a test dependency)."""
    if protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )

        kwargs: dict[str, Any] = dict(endpoint=f"127.0.0.1:{gateway.grpc_port}", insecure=True,
                                      timeout=timeout_s, headers=headers,
                                      compression=grpc.Compression.Gzip if gzip else None)
        return OTLPSpanExporter(**kwargs), OTLPLogExporter(**kwargs), OTLPMetricExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogs,
    )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetrics,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpans,
    )

    base = f"http://127.0.0.1:{gateway.http_port}/v1"
    kwargs = dict(timeout=timeout_s, headers=headers,
                  compression=Compression.Gzip if gzip else Compression.NoCompression)
    return (HttpSpans(endpoint=f"{base}/traces", **kwargs), HttpLogs(endpoint=f"{base}/logs", **kwargs),
            HttpMetrics(endpoint=f"{base}/metrics", **kwargs))
