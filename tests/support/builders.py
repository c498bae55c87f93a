"""Small builders of OTLP export requests and per-test settings for integration tests."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import (
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
)

from core.settings import Settings

T0 = 1_763_856_000_000_000_000  # 2025-11-23T00:00:00Z


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, list):
        return KeyValue(key=key,
                        value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value])))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(trace_id: str, span_id: str, parent: str = "", name: str = "op", start_ns: int = T0,
         duration_ns: int = 1_000_000, error: bool = False, **attrs: Any) -> Span:
    return Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id),
                parent_span_id=bytes.fromhex(parent) if parent else b"", name=name, kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + duration_ns,
                status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK),
                attributes=[kv(k.replace("__", "."), v) for k, v in attrs.items()])


def traces_request(service: str, spans: list[Span], **resource: Any) -> bytes:
    attrs = [kv("service.name", service)] + [kv(k.replace("__", "."), v) for k, v in resource.items()]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=attrs), scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString()


def log_record(trace_id: str, span_id: str, body: str, time_ns: int = T0, severity: int = 9, **attrs: Any) -> LogRecord:
    return LogRecord(time_unix_nano=time_ns, trace_id=bytes.fromhex(trace_id) if trace_id else b"",
                     span_id=bytes.fromhex(span_id) if span_id else b"", severity_number=severity,
                     body=AnyValue(string_value=body),
                     attributes=[kv(k.replace("__", "."), v) for k, v in attrs.items()])


def logs_request(service: str, records: list[LogRecord]) -> bytes:
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[kv("service.name", service)]),
        scope_logs=[ScopeLogs(log_records=records)])]).SerializeToString()


def settings_for(unique: str, data_dir: Path, database: str, partitions: int = 2) -> Settings:
    """Settings whose topics and database belong to one test."""
    names = dict(spans="raw-spans", logs="raw-logs", metrics="raw-metrics", enriched_spans="en-spans",
                 enriched_logs="en-logs", enriched_metrics="en-metrics", alerts="alerts", deadletter="dead")
    return Settings.model_validate({
        "data_dir": str(data_dir),
        "topics": {k: f"{unique}-{v}" for k, v in names.items()} | {"partitions": partitions},
        "clickhouse": {"database": database},
        "sink": {"batch_max_rows": 200, "batch_max_age_s": 0.2},
    })


def with_stage(settings: Settings, **sections: Any) -> Settings:
    """``settings`` with whole sections replaced (e.g. score=ScoreConfig(...)): the worker
    builds every stage config from the settings, as in production."""
    return settings.model_copy(update=sections)


async def wait_until(check: Callable[[], Any], deadline_s: float = 60.0,
                     what: str | Callable[[], str] = "condition") -> Any:
    """Poll ``check`` (sync, run off the loop) until it returns a truthy value or time runs
    out; ``what`` (or what it returns, asked at the deadline) names the condition."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.1)
    named = what() if callable(what) else what
    raise AssertionError(f"{named} not reached within {deadline_s}s (last: {last!r})")
