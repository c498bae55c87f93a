"""Anomaly detection quality and scoring throughput on labelled synthetic streams, printed as JSON.

Why synthetic: the public real-world benchmark (NAB) cannot be downloaded here, so its
properties are generated, seeded: ten-minute windows over three weeks, daily and weekly
cycles, trends, lasting level shifts, heavy-tailed (Student-t latency, bursty negative
binomial traffic) and count noise; anomalies of eight kinds (spike, dip, level shift,
variance change, latency drop, slow drift, error burst, dropout), and streams with no
anomaly at all. Three detectors see the same streams in the same run: the stage's
seasonal detector (agents/score/detector.py, its default threshold, untuned), the robust
z-score detector it replaced and NAB's windowed-Gaussian baseline (both copied here, each
at the best of a few thresholds). Each gets the stage's alert rule (fire_windows high in a
row fire, resolve_windows low resolve), and its alert onsets are judged:

- by kind: precision (alert onsets inside a label window), recall (label windows with
  one), F1, and the delay from the anomaly's onset to the alert;
- false alerts per 1,000 windows on the anomaly-free streams (daily cycle, weekly cycle,
  trend, level shifts of -25 % to +35 %: deploys and scale-ups);
- a windowed early-detection score in NAB's style (standard profile: the first alert in a
  label window earns a sigmoid of how early it came, a missed window costs 1, an alert
  outside every window 0.11; the first 15 % of a stream is probation), normalized so that
  a detector that never fires scores 0 and a perfect one 100.

Then, as before, synthetic services (lognormal latencies, binomial errors, Poisson
traffic, several operations) with incidents go through the whole score engine
(agents/score/logic.py) for its service-level alerts and its throughput: spans/s through
scoring alone, and through decoding enriched records (Arrow) + scoring, with closing
windows and without, beside the 160k spans/s the robust detector measured.

The streams and the two comparison detectors (which live only here) are in
benchmarks/support/anomaly_streams.py.

    python benchmarks/anomaly_detection.py [--seed 1] [--stream-days 21] [--streams-per-kind 5]
        [--services 8] [--windows 400] [--record-spans 2000]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from agents.score.config import ScoreConfig  # noqa: E402
from agents.score.logic import ScoreEngine  # noqa: E402
from benchmarks.support.anomaly_streams import (  # noqa: E402
    DAY_W,
    QUIET_SHAPES,
    STREAM_KINDS,
    best_of,
    evaluate,
    f1_score,
    make_streams,
)
from schemas.enriched import decode_enriched, encode_enriched  # noqa: E402
from schemas.tables import TRACES_TABLE  # noqa: E402

T0 = 1_763_856_000_000_000_000
MS = 1_000_000
KINDS = ("latency_step", "latency_one_operation", "latency_ramp", "error_burst", "traffic_drop")


@dataclass(frozen=True)
class Incident:
    service: str
    kind: str
    first: int
    last: int
    size: float


@dataclass(frozen=True)
class Service:
    name: str
    latency_ms: float
    sigma: float
    error_rate: float
    spans: float
    operations: tuple[tuple[str, float], ...]  # (name, latency factor)


def make_services(count: int, rng: random.Random) -> list[Service]:
    out = []
    for i in range(count):
        ops = tuple((f"op-{j}", rng.choice((0.5, 1.0, 2.0, 4.0))) for j in range(rng.randint(2, 4)))
        out.append(Service(f"svc-{i}", rng.uniform(10, 200), rng.uniform(0.2, 0.5),
                           rng.choice((0.0, 0.005, 0.02, 0.05)), rng.uniform(30, 150), ops))
    return out


def make_incidents(services: list[Service], windows: int, rng: random.Random, warmup: int = 40) -> list[Incident]:
    out = []
    for s in services:
        at = warmup + rng.randint(0, 30)
        while at < windows - 20:
            length = rng.randint(4, 12)
            kind = rng.choice(KINDS)
            # From subtle (x1.5 latency, +5 % errors, traffic down to half) to blatant.
            size = {"latency_step": rng.uniform(1.5, 4.0), "latency_one_operation": rng.uniform(2.0, 8.0),
                    "latency_ramp": rng.uniform(2.0, 4.0), "error_burst": rng.uniform(0.05, 0.4),
                    "traffic_drop": rng.uniform(0.05, 0.5)}[kind]
            out.append(Incident(s.name, kind, at, min(at + length - 1, windows - 1), size))
            at += length + rng.randint(25, 60)
    return out


def window_spans(s: Service, w: int, active: Incident | None, rng: random.Random, window_ns: int,
                 into: dict[str, list[Any]]) -> None:
    """The spans of service ``s`` in window ``w``, appended to the otel_traces columns ``into``."""
    swing = 1 + 0.2 * math.sin(2 * math.pi * w / 120)
    spans = s.spans * swing
    latency, errors = 1.0, s.error_rate
    if active is not None:
        progress = (w - active.first + 1) / (active.last - active.first + 1)
        if active.kind == "traffic_drop":
            spans *= active.size
        elif active.kind == "error_burst":
            errors = min(1.0, errors + active.size)
        elif active.kind == "latency_step":
            latency = active.size
        elif active.kind == "latency_ramp":
            latency = 1 + (active.size - 1) * progress
    count = max(0, round(rng.gauss(spans, math.sqrt(spans))))
    for i in range(count):
        op, factor = s.operations[i % len(s.operations)]
        slow = latency * (active.size if active and active.kind == "latency_one_operation" and op == "op-0" else 1)
        duration = int(rng.lognormvariate(0, s.sigma) * s.latency_ms * factor * slow * MS)
        into["Timestamp"].append(T0 + w * window_ns + i * window_ns // max(count, 1))
        into["ServiceName"].append(s.name)
        into["SpanName"].append(op)
        into["Duration"].append(duration)
        into["StatusCode"].append("Error" if rng.random() < errors else "Ok")
        into["CorrelationId"].append(f"cid-{s.name}-{w}-{i}")


def generate(services: list[Service], incidents: list[Incident], windows: int, seed: int,
             window_ns: int) -> list[pa.Table]:
    """Per window, the spans of every service as an otel_traces table (no trace IDs)."""
    rng = random.Random(seed)
    by_service = {s.name: [i for i in incidents if i.service == s.name] for s in services}
    out = []
    for w in range(windows):
        columns: dict[str, list[Any]] = {name: [] for name in (
            "Timestamp", "ServiceName", "SpanName", "Duration", "StatusCode", "CorrelationId")}
        for s in services:
            active = next((i for i in by_service[s.name] if i.first <= w <= i.last), None)
            window_spans(s, w, active, rng, window_ns, columns)
        out.append(spans_table(columns))
    return out


def spans_table(columns: dict[str, list[Any]]) -> pa.Table:
    n = len(columns["Timestamp"])
    return pa.table({
        "Timestamp": pa.array(columns["Timestamp"], pa.timestamp("ns", "UTC")),
        "TraceId": columns.get("TraceId", [""] * n), "SpanId": columns.get("SpanId", [""] * n),
        "ParentSpanId": columns.get("ParentSpanId", [""] * n), "SpanName": columns["SpanName"],
        "SpanKind": ["Server"] * n, "ServiceName": columns["ServiceName"],
        "ResourceAttributes": pa.array([[("service.name", s)] for s in columns["ServiceName"]],
                                       pa.map_(pa.string(), pa.string())),
        "SpanAttributes": pa.array([[("http.route", "/x")]] * n, pa.map_(pa.string(), pa.string())),
        "Duration": pa.array(columns["Duration"], pa.uint64()), "StatusCode": columns["StatusCode"],
        "CorrelationId": columns["CorrelationId"],
    })


def with_calls(window: int, table: pa.Table) -> pa.Table:
    """``table`` with trace, span and parent IDs: span i and span i - n/4 are in one trace, the
    latter the parent (mostly of another service, so the call graph has edges to learn)."""
    n = table.num_rows
    traces = max(1, n // 4)
    ids = {"TraceId": [f"{window:016x}{i % traces:016x}" for i in range(n)],
           "SpanId": [f"{i + 1:016x}" for i in range(n)],
           "ParentSpanId": [f"{i - traces + 1:016x}" if i >= traces else "" for i in range(n)]}
    for name, values in ids.items():
        table = table.set_column(table.column_names.index(name), name, pa.array(values, pa.string()))
    return table



def quality(signals: dict[tuple[str, int], float], fired: list[tuple[str, int]], incidents: list[Incident],
            threshold: float, fire_windows: int) -> dict[str, Any]:
    labelled = {(i.service, w) for i in incidents for w in range(i.first, i.last + 1)}
    tp = sum(1 for k, s in signals.items() if s >= threshold and k in labelled)
    fp = sum(1 for k, s in signals.items() if s >= threshold and k not in labelled)
    fn = sum(1 for k, s in signals.items() if s < threshold and k in labelled)
    delays: list[int] = []
    matched: set[tuple[str, int]] = set()
    for incident in incidents:
        hits = [w for svc, w in fired
                if svc == incident.service and incident.first <= w <= incident.last + fire_windows]
        if hits:
            delays.append(min(hits) - incident.first)
            matched.update((incident.service, w) for w in hits)
    false_alerts = [f for f in fired if f not in matched]
    precision = (len(fired) - len(false_alerts)) / len(fired) if fired else 1.0
    recall = len(delays) / len(incidents) if incidents else 1.0
    return {
        "incidents": len(incidents), "detected": len(delays), "alerts": len(fired), "false_alerts": len(false_alerts),
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1_score(precision, recall), 4),
        "mean_detection_delay_windows": round(sum(delays) / len(delays), 3) if delays else None,
        "window_precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "window_recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        "window_f1": round(f1_score(tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0), 4),
    }


def run_engine(config: ScoreConfig, windows: list[pa.Table]) -> tuple[dict[tuple[str, int], float],
                                                                             list[tuple[str, int]],
                                                                             list[dict[str, Any]], float]:
    engine = ScoreEngine(config)
    signals: dict[tuple[str, int], float] = {}
    fired: list[tuple[str, int]] = []
    rows: list[dict[str, Any]] = []
    spent = 0.0
    for w, spans in enumerate(windows):
        started = time.perf_counter()
        engine.add_table(0, spans, 0.0, T0 * 2)
        closed = engine.close(T0 // config.window_ns + w)
        spent += time.perf_counter() - started
        for row in closed.rows:
            if row["SpanName"] == "":
                signals[(row["ServiceName"], w)] = row["AlertScore"]
                rows.append(row)
        fired += [(a.labels["service"], w) for a in closed.alerts if a.status == "firing"]
    return signals, fired, rows, spent



def throughput(config: ScoreConfig, windows: list[pa.Table], record_spans: int) -> tuple[float, float]:
    """Spans/s from enriched record bytes (as the agent gets them) to closed windows, and
    to folded spans (closing windows aside: its cost is per key and window, not per span)."""
    records = []
    for w, spans in enumerate(windows):
        spans = with_calls(w, spans)
        records.append([value for i in range(0, spans.num_rows, record_spans)
                        for value in encode_enriched("traces", TRACES_TABLE, spans.slice(i, record_spans),
                                                     8 << 20).values])
    engine = ScoreEngine(config)
    total: int = sum(spans.num_rows for spans in windows)
    folding = 0.0
    started = time.perf_counter()
    for w, batch in enumerate(records):
        fold_started = time.perf_counter()
        for value in batch:
            engine.add_table(0, decode_enriched(value).rows, 0.0, T0 * 2)
        folding += time.perf_counter() - fold_started
        engine.close(T0 // config.window_ns + w)
    return total / (time.perf_counter() - started), total / folding



OLD_SCORING_SPANS_PER_S = 160_000  # the robust z-score detector, scoring alone, at 5b7236c


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stream-days", type=int, default=21)
    parser.add_argument("--streams-per-kind", type=int, default=5)
    parser.add_argument("--quiet-per-shape", type=int, default=5)
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--record-spans", type=int, default=2000, help="spans per enriched record")
    args = parser.parse_args(argv)
    stream_config = ScoreConfig(window_s=600)
    streams = make_streams(args.seed, args.stream_days * DAY_W, args.streams_per_kind, args.quiet_per_shape)
    started = time.perf_counter()
    seasonal = evaluate(streams, "seasonal", stream_config, stream_config.threshold)
    seasonal_s = time.perf_counter() - started
    robust = best_of(streams, "robust_z", stream_config, (0.5, 0.7, 0.8, 0.9, 0.95, 0.99))
    gaussian = best_of(streams, "windowed_gaussian", stream_config, (3.0, 4.0, 5.0, 6.0, 8.0, 10.0))

    config = ScoreConfig(window_s=60)
    rng = random.Random(args.seed)
    services = make_services(args.services, rng)
    incidents = make_incidents(services, args.windows, rng)
    windows = generate(services, incidents, args.windows, args.seed, config.window_ns)
    spans = sum(t.num_rows for t in windows)
    signals, fired, _, spent = run_engine(config, windows)
    engine = quality(signals, fired, incidents, config.threshold, config.fire_windows)
    quiet = generate(services, [], args.windows, args.seed + 1, config.window_ns)
    _, quiet_fired, _, _ = run_engine(config, quiet)
    scoring, folding = throughput(config, windows, args.record_spans)
    result = {
        "benchmark": "anomaly_detection",
        "streams": {"count": len(streams), "windows_each": args.stream_days * DAY_W, "window_s": 600,
                    "kinds": list(STREAM_KINDS), "quiet_shapes": list(QUIET_SHAPES),
                    "labelled_anomalies": sum(len(s.labels) for s in streams),
                    "seasonal_windows_per_s": round(len(streams) * args.stream_days * DAY_W / seasonal_s)},
        "seasonal": seasonal, "robust_z": robust, "windowed_gaussian": gaussian,
        "service_incidents": {"services": args.services, "windows": args.windows, "window_s": config.window_s,
                              "spans": spans, "threshold": config.threshold, **engine,
                              "steady_run_false_alerts": len(quiet_fired),
                              "steady_run_service_windows": args.services * args.windows},
        "scoring_spans_per_s": round(spans / spent), "old_scoring_spans_per_s": OLD_SCORING_SPANS_PER_S,
        "record_spans": args.record_spans,
        "decode_and_scoring_spans_per_s": round(scoring),
        "decode_and_fold_spans_per_s": round(folding),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
