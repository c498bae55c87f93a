"""Span, log and exemplar rows as API JSON objects, and the time and level conventions they use."""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from core.types import Row

ERROR_STATUSES = frozenset({"Error", "STATUS_CODE_ERROR"})
ERROR_SEVERITY = 17  # OTel SeverityNumber ERROR and above
_LEVELS = ((21, "FATAL"), (17, "ERROR"), (13, "WARN"), (9, "INFO"), (5, "DEBUG"), (1, "TRACE"))


def iso_ns(ns: int) -> str:
    """Unix nanoseconds as ISO-8601 UTC with nine decimals: 2026-01-31T12:00:00.123456789Z."""
    seconds, fraction = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def ms(ns: int | float) -> float:
    return round(float(ns) / 1_000_000, 6)


def log_level(severity_number: int, severity_text: str) -> str:
    """The Grafana log level of a record: from SeverityNumber, else from SeverityText."""
    for floor, name in _LEVELS:
        if severity_number >= floor:
            return name
    text = severity_text.strip().upper()
    return {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR"}.get(text, text or "UNSET")


def is_error_span(row: Mapping[str, Any]) -> bool:
    return row["StatusCode"] in ERROR_STATUSES


def is_error_log(row: Mapping[str, Any]) -> bool:
    return int(row["SeverityNumber"]) >= ERROR_SEVERITY or log_level(0, row["SeverityText"]) in ("ERROR", "FATAL")


def shown_id(row: Mapping[str, Any], best_links: Mapping[str, str], fixed: str | None = None) -> str:
    """The correlation ID shown for a row: ``fixed`` (the looked-up ID), else its trace's best
    link, else the row's own stored ID."""
    if fixed is not None:
        return fixed
    return best_links.get(row["TraceId"]) or row["CorrelationId"]


def span_json(row: Mapping[str, Any], correlation_id: str) -> Row:
    events = [
        {"timestamp": iso_ns(ts), "name": name, "attributes": attrs}
        for ts, name, attrs in zip(row["event_ts_ns"], row["event_names"], row["event_attributes"], strict=True)
    ]
    return {
        "trace_id": row["TraceId"],
        "span_id": row["SpanId"],
        "parent_span_id": row["ParentSpanId"],
        "name": row["SpanName"],
        "kind": row["SpanKind"],
        "service": row["ServiceName"],
        "timestamp": iso_ns(row["ts_ns"]),
        "duration_ns": int(row["Duration"]),
        "duration_ms": ms(row["Duration"]),
        "status_code": row["StatusCode"],
        "status_message": row["StatusMessage"],
        "error": is_error_span(row),
        "attributes": row["SpanAttributes"],
        "resource_attributes": row["ResourceAttributes"],
        "events": events,
        "correlation_id": correlation_id,
    }


def log_json(row: Mapping[str, Any], correlation_id: str) -> Row:
    return {
        "timestamp": iso_ns(row["ts_ns"]),
        "trace_id": row["TraceId"],
        "span_id": row["SpanId"],
        "service": row["ServiceName"],
        "severity_text": row["SeverityText"],
        "severity_number": int(row["SeverityNumber"]),
        "level": log_level(int(row["SeverityNumber"]), row["SeverityText"]),
        "error": is_error_log(row),
        "body": row["Body"],
        "attributes": row["LogAttributes"],
        "resource_attributes": row["ResourceAttributes"],
        "correlation_id": correlation_id,
    }


def exemplar_json(row: Mapping[str, Any], correlation_id: str) -> Row:
    value = row["Value"]
    return {
        "timestamp": iso_ns(row["ts_ns"]),
        "metric_name": row["MetricName"],
        "metric_type": row["MetricType"],
        "service": row["ServiceName"],
        "value": float(value) if value is not None and math.isfinite(value) else None,
        "trace_id": row["TraceId"],
        "span_id": row["SpanId"],
        "filtered_attributes": row["FilteredAttributes"],
        "attributes": row["Attributes"],
        "correlation_id": correlation_id,
    }
