"""Labelled single-key streams and the detectors compared on them (benchmarks/anomaly_detection.py).

Ten-minute windows over weeks, seeded: daily and weekly cycles, trends, lasting level
shifts, heavy-tailed (Student-t latency, bursty negative binomial traffic) and count
noise; anomalies of eight kinds, and streams with none. The stage's seasonal detector
(agents/score/detector.py) and, only here, the robust z-score detector it replaced and
NAB's windowed-Gaussian baseline; NAB-style judging of their alert onsets."""
from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from scipy.special import bdtrc, ndtri

from agents.score.config import ScoreConfig
from agents.score.detector import IQR_TO_SIGMA, Detector, quartiles, surprise
from agents.score.features import WindowFeatures

T0 = 1_763_856_000_000_000_000  # midnight UTC

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
                         "recall": round(recall, 3), "f1": round(f1_score(precision, recall), 3),
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
        "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1_score(precision, recall), 3),
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


def f1_score(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0
