"""Anomaly detection quality and scoring throughput on labelled synthetic traffic, printed as JSON.

Synthetic services (lognormal latencies, binomial errors, Poisson traffic with a slow
daily-like swing, several operations each) get known incidents: latency steps on the
whole service or one operation, latency ramps, error bursts and traffic drops. The score
engine (agents/score/logic.py) sees the spans window by window; we count

- windows: a service window scored >= threshold, against the label of that window;
- incidents: an alert that fires between an incident's first window and fire_windows
  after its last one detects it (delay = windows from its first window to the window
  whose close fired the alert; 1 is the minimum with fire_windows = 2); every other
  firing alert is a false alert;
- throughput: spans/s through decoding enriched records (Arrow, schemas/enriched.py) +
  scoring, with closing windows and without (closing costs per key and window, not per
  span), and scoring alone. For the decode + scoring figures every window's spans are
  cut into records of --record-spans spans (one partition's share of a batch) and get
  trace, span and parent IDs (traces of about four spans across services), so the call
  graph learns edges within and across records.

The same windows' service-level features also go through river's HalfSpaceTrees (with
online min-max scaling) and the same alert rule, its threshold picked for its best F1,
as the comparison behind the choice of detector.

    python benchmarks/anomaly_detection.py [--services 8] [--windows 400] [--seed 1] [--record-spans 2000]
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


from agents.alerting import AlertPolicy, AlertTracker, WindowSignal  # noqa: E402
from agents.score.config import ScoreConfig  # noqa: E402
from agents.score.logic import ScoreEngine  # noqa: E402
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
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(_f1(precision, recall), 4),
        "mean_detection_delay_windows": round(sum(delays) / len(delays), 3) if delays else None,
        "window_precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "window_recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        "window_f1": round(_f1(tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0), 4),
    }


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


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


def run_hst(config: ScoreConfig, rows: list[dict[str, Any]], threshold: float, seed: int) -> tuple[
        dict[tuple[str, int], float], list[tuple[str, int]]]:
    from river import anomaly, preprocessing

    models: dict[str, Any] = {}
    tracker = AlertTracker(AlertPolicy(threshold, 1.0, config.fire_windows, config.resolve_windows, "http://x"))
    signals: dict[tuple[str, int], float] = {}
    fired = []
    for row in rows:
        service, w = row["ServiceName"], (row["Timestamp"] - T0) // config.window_ns
        scaler, hst = models.setdefault(service, (preprocessing.MinMaxScaler(),
                                                  anomaly.HalfSpaceTrees(n_trees=25, height=8, window_size=50,
                                                                         seed=seed)))
        x = {"p50": row["P50Ms"] or 0.0, "p95": row["P95Ms"] or 0.0, "errors": row["ErrorRate"] or 0.0,
             "spans": float(row["Spans"])}
        scaler.learn_one(x)
        scaled = scaler.transform_one(x)
        score = hst.score_one(scaled) if w >= config.min_history_windows else 0.0
        hst.learn_one(scaled)
        signals[(service, w)] = score
        alert = tracker.observe(WindowSignal("", service, "", score, "hst", 0, 0, "", "", ""))
        if alert is not None and alert.status == "firing":
            fired.append((service, w))
    return signals, fired


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--record-spans", type=int, default=2000, help="spans per enriched record")
    args = parser.parse_args(argv)
    config = ScoreConfig(window_s=60)
    rng = random.Random(args.seed)
    services = make_services(args.services, rng)
    incidents = make_incidents(services, args.windows, rng)
    windows = generate(services, incidents, args.windows, args.seed, config.window_ns)
    spans = sum(t.num_rows for t in windows)
    signals, fired, rows, spent = run_engine(config, windows)
    robust = quality(signals, fired, incidents, config.threshold, config.fire_windows)
    by_kind = {}
    for kind in KINDS:
        subset = [i for i in incidents if i.kind == kind]
        q = quality(signals, fired, subset, config.threshold, config.fire_windows)
        by_kind[kind] = {"incidents": q["incidents"], "detected": q["detected"],
                         "mean_detection_delay_windows": q["mean_detection_delay_windows"]}
    best: dict[str, Any] = {}
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        hst_signals, hst_fired = run_hst(config, rows, threshold, args.seed)
        q = quality(hst_signals, hst_fired, incidents, threshold, config.fire_windows)
        if not best or q["f1"] > best["f1"]:
            best = {"threshold": threshold, **q}
    quiet = generate(services, [], args.windows, args.seed + 1, config.window_ns)
    _, quiet_fired, _, _ = run_engine(config, quiet)
    scoring, folding = throughput(config, windows, args.record_spans)
    result = {
        "benchmark": "anomaly_detection",
        "services": args.services, "windows": args.windows, "window_s": config.window_s, "spans": spans,
        "detector": "robust_z", "threshold": config.threshold, "fire_windows": config.fire_windows,
        "resolve_windows": config.resolve_windows,
        "robust_z": robust, "robust_z_by_kind": by_kind,
        "steady_run_false_alerts": len(quiet_fired), "steady_run_service_windows": args.services * args.windows,
        "half_space_trees": best,
        "scoring_spans_per_s": round(spans / spent),
        "record_spans": args.record_spans,
        "decode_and_scoring_spans_per_s": round(scoring),
        "decode_and_fold_spans_per_s": round(folding),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
