"""Builders of span points and window features for the score unit tests (deterministic)."""
from __future__ import annotations

import random

from agents.score.config import ScoreConfig
from agents.score.features import SpanPoint, WindowFeatures

T0 = 1_763_856_000_000_000_000  # 2025-11-23T00:00:00Z, a window boundary for any window_s dividing a day
MS = 1_000_000
NOW_NS = T0 + 10 * 86_400 * 1_000_000_000  # wall clock of the tests: well after the spans
CONFIG = ScoreConfig(window_s=10, lateness_s=2.0, history_windows=20, min_history_windows=8, min_spans=10)


def window_points(window: int, service: str, *, spans: int = 40, latency_ms: float = 50.0, error_rate: float = 0.0,
                  operations: tuple[str, ...] = ("GET /a", "POST /b"), seed: int = 0, tenant: str = "",
                  config: ScoreConfig = CONFIG) -> list[SpanPoint]:
    """``spans`` spans of ``service`` spread over window ``window``; latency around latency_ms."""
    rng = random.Random(f"{seed}:{window}:{service}")
    out = []
    for i in range(spans):
        at = T0 + window * config.window_ns + i * config.window_ns // max(spans, 1)
        duration = int(rng.lognormvariate(0, 0.25) * latency_ms * MS)
        error = rng.random() < error_rate
        out.append(SpanPoint(at, tenant, service, operations[i % len(operations)], duration, error,
                             (f"cid-{service}-{window}-{i}", f"{window:016x}{i:016x}")))
    return out


def steady(latency_ms: float = 50.0, spans: int = 40, errors: int = 1) -> WindowFeatures:
    return WindowFeatures(spans, errors, latency_ms, latency_ms * 1.6)


def jittered_history(n: int, seed: int = 1) -> list[WindowFeatures]:
    rng = random.Random(seed)
    return [WindowFeatures(40 + rng.randint(-6, 6), rng.randint(0, 2), 50 + rng.uniform(-4, 4),
                           80 + rng.uniform(-8, 8)) for _ in range(n)]


CHAIN = ("edge", "orders", "payments")  # edge calls orders, orders calls payments


def chain_points(window: int, *, flows: int = 40, slow: str = "", failing: str = "", seed: int = 0,
                 config: ScoreConfig = CONFIG) -> list[SpanPoint]:
    """``flows`` traces through CHAIN in window ``window``, children first (as services export
    them): a caller's span lasts its own work plus its callee's, and fails when it does.
    ``slow`` adds 300 ms to one service's own work; ``failing`` makes half its calls fail."""
    rng = random.Random(f"{seed}:{window}:chain")
    out = []
    for i in range(flows):
        at = T0 + window * config.window_ns + i * config.window_ns // max(flows, 1)
        trace = f"{window:016x}{i:016x}"
        duration, error, spans = 0, False, []
        for depth, service in reversed(list(enumerate(CHAIN))):
            duration += int(rng.lognormvariate(0, 0.2) * (10 + 300 * (service == slow)) * MS)
            error = error or (service == failing and rng.random() < 0.5)
            parent = f"{depth:016x}" if depth else ""
            spans.append(SpanPoint(at + depth * MS, "", service, f"call {service}", duration, error,
                                   (f"cid-{trace}", trace), f"{depth + 1:016x}", parent))
        out.extend(spans)
    return out
