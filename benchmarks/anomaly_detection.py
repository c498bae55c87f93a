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

This file is over 400 lines because the comparison detectors must live here, and only here.

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
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from scipy.special import bdtrc, ndtri

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from agents.score.config import ScoreConfig  # noqa: E402
from agents.score.detector import IQR_TO_SIGMA, Detector, quartiles, surprise  # noqa: E402
from agents.score.features import WindowFeatures  # noqa: E402
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



# ---- Labelled single-key streams: the three detectors side by side -----------------------

DAY_W, WEEK_W = 144, 1008  # ten-minute windows
STREAM_KINDS = ("spike", "dip", "level_shift", "variance_change", "latency_drop", "drift", "error_burst",
                "dropout")
QUIET_SHAPES = ("daily", "weekly", "trend", "level_shift")
NAB_TP, NAB_FP, NAB_FN = 1.0, 0.11, 1.0  # NAB's standard profile
PROBATION = 0.15  # NAB: the first 15 % of a stream is for learning; nothing there counts


@dataclass(frozen=True)
class Stream:
    """One key's windows (features), its labelled anomaly windows and their onsets."""

    name: str
    kind: str  # anomaly kind, or "none:<shape>"
    features: tuple[WindowFeatures, ...]
    labels: tuple[tuple[int, int, int], ...]  # (window start, window end, onset), inclusive


def _shape(shape: str, w: int, n: int, phase: float, steps: list[tuple[int, float]]) -> float:
    """The multiplicative shape of a stream at window w (1 = its level): days peak in the
    afternoon and bottom out at night (window 0 is midnight UTC)."""
    angle = 2 * math.pi * w / DAY_W + phase
    daily = 1 + 0.5 * math.sin(angle)
    if shape == "daily":
        return daily
    if shape == "weekly":  # weekends: nights as usual, days at about half the weekday peak
        return 0.7 + 0.15 * math.sin(angle) if (w // DAY_W) % 7 >= 5 else daily
    if shape == "trend":  # doubles over the stream, with a mild daily cycle
        return (1 + w / n) * (1 + 0.2 * math.sin(angle))
    if shape == "level_shift":  # deploys and scale-ups: lasting steps of -25 % to +35 %, daily cycle
        factor = 1.0
        for at, size in steps:
            factor *= size if w >= at else 1.0
        return factor * (1 + 0.3 * math.sin(angle))
    return 1.0


def make_stream(name: str, kind: str, shape: str, n: int, rng: random.Random) -> Stream:
    """A stream of ``n`` windows: a base shape, a noise kind, and (unless kind is "none")
    three to four anomalies of ``kind`` after the probation period."""
    metric = {"spike": rng.choice(("latency", "traffic")), "dip": "traffic", "dropout": "traffic",
              "error_burst": "errors", "latency_drop": "latency", "variance_change": "latency",
              "drift": "latency", "level_shift": rng.choice(("latency", "traffic"))}.get(kind, rng.choice(
                  ("latency", "traffic", "errors")))
    phase = -5 * math.pi / 6 + rng.uniform(-math.pi / 12, math.pi / 12)  # lowest at about 04:00
    steps = [(rng.randint(int(n * 0.2), n - 1), rng.choice((0.75, 0.8, 1.25, 1.35))) for _ in range(3)]
    heavy = rng.random() < 0.5  # Student-t (3 dof) latency, or bursty (negative binomial) traffic
    level = rng.uniform(20, 400)
    sigma = rng.uniform(0.04, 0.12)
    anomalies: list[tuple[int, int, float]] = []  # (first, last, size)
    if kind != "none":
        at = int(n * PROBATION) + rng.randint(20, 200)
        while at < n - 60 and len(anomalies) < 4:
            length = {"spike": rng.randint(2, 4), "dip": rng.randint(2, 4), "level_shift": n - at,
                      "variance_change": rng.randint(20, 40), "latency_drop": rng.randint(5, 20),
                      "drift": rng.randint(30, 60), "error_burst": rng.randint(3, 10),
                      "dropout": rng.randint(3, 10)}[kind]
            size = {"spike": rng.uniform(2.5, 6.0), "dip": rng.uniform(0.1, 0.35),
                    "level_shift": rng.choice((0.4, 2.0, 2.5, 3.0)), "variance_change": rng.uniform(4.0, 6.0),
                    "latency_drop": rng.uniform(0.2, 0.5), "drift": rng.uniform(2.5, 4.0),
                    "error_burst": rng.uniform(0.08, 0.3), "dropout": 0.0}[kind]
            anomalies.append((at, min(at + length - 1, n - 1), size))
            if kind == "level_shift":
                break
            at += length + rng.randint(150, 400)
    features = []
    for w in range(n):
        expected = level * _shape(shape, w, n, phase, steps)
        latency, spans, rate, noise = 50.0 * (expected / level if metric == "latency" else 1.0), 200.0, 0.01, sigma
        if metric == "traffic":
            spans = expected
        active = next((a for a in anomalies if a[0] <= w <= a[1]), None)
        if active is not None:
            first, last, size = active
            if kind == "variance_change":
                noise *= size
            elif kind == "drift":
                latency *= 1 + (size - 1) * (w - first + 1) / (last - first + 1)
            elif kind == "error_burst":
                rate += size
            elif metric == "latency":
                latency *= size
            else:
                spans *= size
        draw = rng.gammavariate(25.0, spans / 25.0) if heavy and metric == "traffic" and spans > 0 else spans
        count = _poisson(draw, rng)
        shock = (rng.gauss(0, 1) / math.sqrt(rng.gammavariate(1.5, 1 / 1.5))) if heavy else rng.gauss(0, 1)
        p50 = latency * math.exp(noise * shock)
        errors = sum(1 for _ in range(count) if rng.random() < rate) if count < 2000 else round(count * rate)
        features.append(WindowFeatures(count, errors, p50 if count else None,
                                       p50 * 1.8 * math.exp(0.05 * rng.gauss(0, 1)) if count else None))
    grace = 6  # a label window runs a few windows past the anomaly (NAB windows are wide)
    labels = tuple((a[0], min(a[0] + 10, n - 1) if kind == "level_shift" else min(a[1] + grace, n - 1), a[0])
                   for a in anomalies)
    return Stream(name, kind if kind != "none" else f"none:{shape}", tuple(features), labels)


def _poisson(mean: float, rng: random.Random) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def make_streams(seed: int, n: int, per_kind: int, quiet_per_shape: int) -> list[Stream]:
    rng = random.Random(seed)
    streams = []
    for kind in STREAM_KINDS:
        for i in range(per_kind):
            shape = rng.choice(("daily", "weekly", "trend", "flat"))
            streams.append(make_stream(f"{kind}-{i}", kind, shape, n, rng))
    for shape in QUIET_SHAPES:
        for i in range(quiet_per_shape):
            streams.append(make_stream(f"quiet-{shape}-{i}", "none", shape, n, rng))
    return streams


class RobustZ:
    """The detector the seasonal one replaced (robust z-scores over the last 30 learned
    windows, scores z^2 / (z^2 + z_half^2)), kept here only as the comparison."""

    def __init__(self, config: ScoreConfig, z_half: float = 4.0) -> None:
        self.config, self.z_half = config, z_half
        self.history: deque[WindowFeatures] = deque(maxlen=config.history_windows)
        self.frozen = 0

    def score(self, f: WindowFeatures) -> float:
        c = self.config
        if len(self.history) < c.min_history_windows:
            return 0.0
        dense = [h for h in self.history if h.spans >= c.min_spans]
        q25, med, q75 = quartiles([float(h.spans) for h in self.history])
        z = [abs(f.spans - med) / max((q75 - q25) / IQR_TO_SIGMA, math.sqrt(max(med, 1.0)),
                                      c.throughput_floor_ratio * med)]
        if f.spans >= c.min_spans and len(dense) >= c.min_history_windows:
            floor = math.log(c.latency_floor_ms)
            for current, past in ((f.p50_ms, [h.p50_ms for h in dense]), (f.p95_ms, [h.p95_ms for h in dense])):
                logs = [max(math.log(v), floor) if v else floor for v in past]
                q25, med, q75 = quartiles(logs)
                now = max(math.log(current), floor) if current else floor
                z.append((now - med) / max((q75 - q25) / IQR_TO_SIGMA, math.log1p(c.latency_floor_ratio)))
            q25, med, q75 = quartiles([h.errors / h.spans for h in dense])
            if f.errors / f.spans > med:
                tail = float(bdtrc(f.errors - 1, f.spans, max(med, c.error_rate_floor)))
                ez = math.inf if tail <= 0 else max(0.0, -float(ndtri(tail)))
                sigma = (q75 - q25) / IQR_TO_SIGMA
                z.append(ez if sigma <= 0 else min(ez, (f.errors / f.spans - med) / sigma))
        best = max(z)
        return 0.0 if best <= 0 else 1.0 if math.isinf(best) else best * best / (best * best + self.z_half ** 2)

    def learn(self, f: WindowFeatures, score: float, threshold: float) -> None:
        if score < threshold or self.frozen >= self.config.max_frozen_windows:
            self.history.append(f)
            self.frozen = 0
        else:
            self.frozen += 1


class WindowedGaussian:
    """NAB's windowed-Gaussian baseline: the stream's own metric against the mean and
    standard deviation of its last ``size`` windows, scored as -log10 of the two-sided tail."""

    def __init__(self, metric: str, size: int = 2 * DAY_W) -> None:
        self.metric = metric
        self.values: deque[float] = deque(maxlen=size)

    def value(self, f: WindowFeatures) -> float:
        if self.metric == "traffic":
            return float(f.spans)
        if self.metric == "errors":
            return f.errors / f.spans if f.spans else 0.0
        return f.p95_ms or 0.0

    def score(self, f: WindowFeatures) -> float:
        x = self.value(f)
        out = 0.0
        if len(self.values) >= 30:
            mean = sum(self.values) / len(self.values)
            std = math.sqrt(sum((v - mean) ** 2 for v in self.values) / len(self.values)) or 1e-9
            out = surprise((x - mean) / std, True)
        self.values.append(x)
        return out


def _metric(stream: Stream) -> str:
    f = stream.features[0]
    if stream.kind in ("error_burst",):
        return "errors"
    if stream.kind in ("dip", "dropout"):
        return "traffic"
    spans = [x.spans for x in stream.features[:50]]
    return "traffic" if max(spans) - min(spans) > 60 or f.spans < 150 else "latency"


def stream_scores(stream: Stream, detector: str, config: ScoreConfig, threshold: float) -> list[float]:
    """Each window's score by ``detector`` (learning as it goes, as the stage does)."""
    out = []
    if detector == "seasonal":
        model = Detector(config)
        for w, f in enumerate(stream.features):
            at = T0 + w * config.window_ns
            score = model.score(f, at)
            model.learn(f, score, at)
            out.append(score.score)
    elif detector == "robust_z":
        robust = RobustZ(config)
        for f in stream.features:
            value = robust.score(f)
            robust.learn(f, value, threshold)
            out.append(value)
    else:
        gaussian = WindowedGaussian(_metric(stream))
        out = [gaussian.score(f) for f in stream.features]
    return out


def onsets(scores: list[float], threshold: float, fire_windows: int, resolve_windows: int) -> list[int]:
    """Windows at which an alert fires (the stage's rule: fire_windows high in a row fire,
    resolve_windows low in a row resolve)."""
    out, high, low, firing = [], 0, 0, False
    for w, score in enumerate(scores):
        if score >= threshold:
            high, low = high + 1, 0
            if not firing and high >= fire_windows:
                firing = True
                out.append(w)
        else:
            high, low = 0, low + 1
            if firing and low >= resolve_windows:
                firing = False
    return out


def _sigmoid(y: float) -> float:
    return 2 / (1 + math.exp(5 * y)) - 1


def judge(stream: Stream, fired: list[int]) -> dict[str, Any]:
    """NAB-style: the first alert in a label window earns A_TP times a sigmoid of how early
    it came; a missed window costs A_FN; an alert outside every window costs A_FP; alerts in
    the probation period do not count."""
    n = len(stream.features)
    start = int(n * PROBATION)
    fired = [w for w in fired if w >= start]
    raw, tp, delays, matched = 0.0, 0, [], set()
    for first, last, onset in stream.labels:
        hits = [w for w in fired if first <= w <= last]
        matched.update(hits)
        if hits:
            y = (hits[0] - last) / (last - first + 1)  # -1 at the window's start, 0 at its end
            raw += NAB_TP * _sigmoid(y)
            tp += 1
            delays.append(hits[0] - onset)
        else:
            raw -= NAB_FN
    fp = len([w for w in fired if w not in matched])
    raw -= NAB_FP * fp
    return {"raw": raw, "tp": tp, "fp": fp, "alerts": len(fired), "delays": delays, "scored": n - start,
            "perfect": NAB_TP * len(stream.labels) * _sigmoid(-1.0), "null": -NAB_FN * len(stream.labels)}


def evaluate(streams: list[Stream], detector: str, config: ScoreConfig, threshold: float) -> dict[str, Any]:
    """Precision, recall, F1 and delay by kind, false alerts per 1,000 windows of the quiet
    streams by shape, and the NAB-style score (0 = never fires, 100 = perfect)."""
    judged = [(s, judge(s, onsets(stream_scores(s, detector, config, threshold), threshold, config.fire_windows,
                                  config.resolve_windows))) for s in streams]
    by_kind = {}
    for kind in STREAM_KINDS:
        rows = [j for s, j in judged if s.kind == kind]
        labels = sum(len(s.labels) for s, _ in judged if s.kind == kind)
        tp, alerts = sum(j["tp"] for j in rows), sum(j["alerts"] for j in rows)
        true_alerts = sum(j["alerts"] - j["fp"] for j in rows)
        precision = true_alerts / alerts if alerts else 1.0
        recall = tp / labels if labels else 1.0
        delays = [d for j in rows for d in j["delays"]]
        by_kind[kind] = {"anomalies": labels, "detected": tp, "precision": round(precision, 3),
                         "recall": round(recall, 3), "f1": round(_f1(precision, recall), 3),
                         "mean_delay_windows": round(sum(delays) / len(delays), 2) if delays else None}
    quiet = {}
    for shape in QUIET_SHAPES:
        rows = [j for s, j in judged if s.kind == f"none:{shape}"]
        quiet[shape] = round(1000 * sum(j["fp"] for j in rows) / max(1, sum(j["scored"] for j in rows)), 3)
    raw = sum(j["raw"] for _, j in judged)
    null, perfect = sum(j["null"] for _, j in judged), sum(j["perfect"] for _, j in judged)
    labelled = [j for s, j in judged if s.labels]
    all_delays = [d for j in labelled for d in j["delays"]]
    tp = sum(j["tp"] for j in labelled)
    alerts = sum(j["alerts"] for j in labelled)
    true_alerts = sum(j["alerts"] - j["fp"] for j in labelled)
    precision, recall = (true_alerts / alerts if alerts else 1.0), tp / max(1, sum(len(s.labels) for s in streams))
    return {
        "threshold": threshold, "nab_score": round(100 * (raw - null) / (perfect - null), 2),
        "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(_f1(precision, recall), 3),
        "mean_delay_windows": round(sum(all_delays) / len(all_delays), 2) if all_delays else None,
        "false_alerts_per_1000_windows_quiet": quiet,
        "false_alerts_per_1000_windows_quiet_all": round(
            1000 * sum(j["fp"] for s, j in judged if not s.labels)
            / max(1, sum(j["scored"] for s, j in judged if not s.labels)), 3),
        "by_kind": by_kind,
    }


def best_of(streams: list[Stream], detector: str, config: ScoreConfig, thresholds: tuple[float, ...]) -> dict[str, Any]:
    """The evaluation at the threshold with the best NAB score (the baselines get their best)."""
    results = [evaluate(streams, detector, config, t) for t in thresholds]
    return max(results, key=lambda r: r["nab_score"])


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
