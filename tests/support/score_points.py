"""Builders of span tables (otel_traces columns, as enriched records carry them) and window
features for the score tests (deterministic)."""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from agents.score.config import ScoreConfig
from agents.score.features import WindowFeatures

T0 = 1_763_856_000_000_000_000  # 2025-11-23T00:00:00Z, a window boundary for any window_s dividing a day
MS = 1_000_000
NOW_NS = T0 + 10 * 86_400 * 1_000_000_000  # wall clock of the tests: well after the spans
CONFIG = ScoreConfig(window_s=10, lateness_s=2.0, history_windows=20, min_history_windows=8, min_spans=10)
TEXT_MAP = pa.map_(pa.string(), pa.string())
# The otel_traces columns the score stage reads, typed as the ingest stage writes them;
# a row leaves out what it does not need.
SPAN_COLUMNS: dict[str, tuple[pa.DataType, Any]] = {
    "Timestamp": (pa.timestamp("ns", "UTC"), T0), "TraceId": (pa.string(), ""), "SpanId": (pa.string(), ""),
    "ParentSpanId": (pa.string(), ""), "SpanName": (pa.string(), ""), "SpanKind": (pa.string(), "Server"),
    "ServiceName": (pa.string(), ""), "ResourceAttributes": (TEXT_MAP, {}), "Duration": (pa.uint64(), 0),
    "StatusCode": (pa.string(), "Unset"), "CorrelationId": (pa.string(), ""),
}


def spans_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """otel_traces rows (dicts; a left-out column takes its default) as an Arrow table."""
    columns = {}
    for name, (kind, default) in SPAN_COLUMNS.items():
        values = [row.get(name, default) for row in rows]
        if kind == TEXT_MAP:
            values = [None if v is None else list(v.items()) for v in values]
        columns[name] = pa.array(values, kind)
    return pa.table(columns)


def span_row(at_ns: int, service: str, operation: str, duration_ns: int, error: bool, correlation_id: str,
             trace_id: str = "", span_id: str = "", parent_span_id: str = "", tenant: str = "") -> dict[str, Any]:
    """One span row of ``service``."""
    resource = {"service.name": service, **({"tenant.id": tenant} if tenant else {})}
    return {"Timestamp": at_ns, "ServiceName": service, "SpanName": operation, "Duration": duration_ns,
            "StatusCode": "Error" if error else "Ok", "CorrelationId": correlation_id, "TraceId": trace_id,
            "SpanId": span_id, "ParentSpanId": parent_span_id, "ResourceAttributes": resource}


def window_rows(window: int, service: str, *, spans: int = 40, latency_ms: float = 50.0, error_rate: float = 0.0,
                operations: tuple[str, ...] = ("GET /a", "POST /b"), seed: int = 0, tenant: str = "",
                config: ScoreConfig = CONFIG) -> list[dict[str, Any]]:
    """``spans`` spans of ``service`` spread over window ``window``; latency around latency_ms."""
    rng = random.Random(f"{seed}:{window}:{service}")
    out = []
    for i in range(spans):
        at = T0 + window * config.window_ns + i * config.window_ns // max(spans, 1)
        duration = int(rng.lognormvariate(0, 0.25) * latency_ms * MS)
        error = rng.random() < error_rate
        out.append(span_row(at, service, operations[i % len(operations)], duration, error,
                            f"cid-{service}-{window}-{i}", f"{window:016x}{i:016x}", tenant=tenant))
    return out


def window_spans(window: int, service: str, **shape: Any) -> pa.Table:
    """window_rows as a table: one record's spans."""
    return spans_table(window_rows(window, service, **shape))


def steady(latency_ms: float = 50.0, spans: int = 40, errors: int = 1) -> WindowFeatures:
    return WindowFeatures(spans, errors, latency_ms, latency_ms * 1.6)


def jittered_history(n: int, seed: int = 1) -> list[WindowFeatures]:
    rng = random.Random(seed)
    return [WindowFeatures(40 + rng.randint(-6, 6), rng.randint(0, 2), 50 + rng.uniform(-4, 4),
                           80 + rng.uniform(-8, 8)) for _ in range(n)]


CHAIN = ("edge", "orders", "payments")  # edge calls orders, orders calls payments


def chain_spans(window: int, *, flows: int = 40, slow: str = "", failing: str = "", seed: int = 0,
                config: ScoreConfig = CONFIG) -> pa.Table:
    """``flows`` traces through CHAIN in window ``window``, children first (as services export
    them): a caller's span lasts its own work plus its callee's, and fails when it does.
    ``slow`` adds 300 ms to one service's own work; ``failing`` makes half its calls fail."""
    rng = random.Random(f"{seed}:{window}:chain")
    out = []
    for i in range(flows):
        at = T0 + window * config.window_ns + i * config.window_ns // max(flows, 1)
        trace = f"{window:016x}{i:016x}"
        duration, error = 0, False
        for depth, service in reversed(list(enumerate(CHAIN))):
            duration += int(rng.lognormvariate(0, 0.2) * (10 + 300 * (service == slow)) * MS)
            error = error or (service == failing and rng.random() < 0.5)
            parent = f"{depth:016x}" if depth else ""
            out.append(span_row(at + depth * MS, service, f"call {service}", duration, error, f"cid-{trace}", trace,
                                f"{depth + 1:016x}", parent))
    return spans_table(out)
