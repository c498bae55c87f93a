"""The score engine: spans -> window aggregates -> scores -> alert changes (pure, stateful).

Plain data in (a record's spans as an Arrow table, wall and partition facts), plain data
out (anomaly rows, alerts); no I/O, so every rule is tested without a broker.
agents/score/agent.py feeds it from the enriched spans topic and stores what it returns."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from agents.alerting import FEATURE_TEXT, AlertPolicy, AlertTracker, WindowSignal
from agents.cardinality import CardinalityLimiter
from agents.score.config import FEATURES, ScoreConfig
from agents.score.detector import LEVEL_SHIFT, Detector, Score
from agents.score.features import (
    SERVICE_WIDE,
    Exemplar,
    Key,
    WindowAggregate,
    WindowFeatures,
    features_of,
)
from agents.score.predict import Predictor
from agents.score.spans import Spans, distinct_keys, read_spans, window_partials
from agents.score.topology import CallGraph, explained_by, explaining
from agents.score.windows import WindowClock
from schemas.alerts import Alert

NS_PER_S = 1_000_000_000
FUTURE_TOLERANCE_NS = 3600 * NS_PER_S  # spans stamped further ahead of the wall clock are dropped
_Z_COLUMNS = {"latency_p50": "ZLatencyP50", "latency_p95": "ZLatencyP95", "error_rate": "ZErrorRate",
              "throughput": "ZThroughput"}
_BASELINE_COLUMNS = {"latency_p50": "BaselineP50Ms", "latency_p95": "BaselineP95Ms",
                     "error_rate": "BaselineErrorRate", "throughput": "BaselineSpans"}


@dataclass
class ClosedWindows:
    """What closing windows produced, in the order to deliver it."""

    rows: list[dict[str, Any]] = field(default_factory=list)  # ollystack_anomalies rows
    alerts: list[Alert] = field(default_factory=list)  # fired or resolved
    closed_through: int = -1  # every window with an index <= this is closed
    scores: list[tuple[Key, float]] = field(default_factory=list)
    evicted: list[Key] = field(default_factory=list)


def describe_score(reason: str, f: WindowFeatures, score: Score) -> str:
    """'p95 latency 812.0 ms vs baseline 41.0 ms (z 18.2)': the feature behind a score, in words."""
    if not reason:
        return ""
    return f"{FEATURE_TEXT[reason]} {_versus(reason, f, score)} (z {max(min(score.z.get(reason, 0.0), 1e6), -1e6):.1f})"


def describe_shift(f: WindowFeatures, score: Score, windows: int) -> str:
    """'level shift: p95 latency 160.0 ms vs baseline 80.0 ms, learned after 30 windows'."""
    reason = score.reason or "throughput"
    return f"level shift: {FEATURE_TEXT[reason]} {_versus(reason, f, score)}, learned after {windows} windows"


def _versus(reason: str, f: WindowFeatures, score: Score) -> str:
    base = score.baseline.get(reason)
    if reason == "error_rate":
        now, then = f"{(f.error_rate or 0) * 100:.1f} %", f"{(base or 0) * 100:.1f} %"
    elif reason == "throughput":
        now, then = f"{f.spans} spans/window", f"{base or 0:.0f}"
    else:
        value = f.p50_ms if reason == "latency_p50" else f.p95_ms
        now, then = f"{value or 0:.1f} ms", f"{base or 0:.1f} ms"
    return f"{now} vs baseline {then}"


def _exemplar(agg: WindowAggregate, reason: str) -> Exemplar:
    if reason == "error_rate" and agg.error_exemplar[0]:
        return agg.error_exemplar
    return agg.slow_exemplar


class ScoreEngine:
    """Open windows, one detector per key, and the alert states of services."""

    def __init__(self, config: ScoreConfig) -> None:
        self.config = config
        self.window_ns = config.window_ns
        self.clock = WindowClock(int(config.lateness_s * NS_PER_S), config.idle_partition_s)
        self.windows: dict[int, dict[Key, WindowAggregate]] = {}
        self.detectors: dict[Key, Detector] = {}
        self.last_seen: dict[Key, int] = {}
        self.tracker = AlertTracker(AlertPolicy(config.threshold, config.critical_threshold, config.fire_windows,
                                                config.resolve_windows, config.api_url.rstrip("/")))
        self.closed_through = -1
        self.read_spans = 0  # spans with a place (a time and a service), late and future ones too
        self.late_spans = 0
        # Windows scored before a restart: their records are read again (their offsets may
        # not have been committed yet); those spans are skipped, but are not late.
        self.restored_through = -1
        self.reread_spans = 0
        self.future_spans = 0  # stamped more than FUTURE_TOLERANCE_NS ahead of the wall clock
        span_s = config.cardinality_window_s
        self._tenants = CardinalityLimiter(config.max_tenants, span_s, max_keys=1)
        self._services = CardinalityLimiter(config.max_services, span_s, max_keys=config.max_tenants + 1)
        self._operations = CardinalityLimiter(config.max_operations, span_s,
                                              max_keys=(config.max_tenants + 1) * (config.max_services + 1))
        # Keys quiet for this many windows are forgotten (their state, gauge and alert).
        self.evict_windows = max(config.history_windows + config.max_frozen_windows,
                                 math.ceil(config.cardinality_window_s / config.window_s))
        # Calls seen over the windows a restart reads back (agents/score/state.py) explain
        # anomalies of callers by those of callees (agents/score/topology.py).
        self.graph = CallGraph()
        self.graph_windows = config.history_windows + config.max_frozen_windows
        self.predictor = Predictor(config)

    def _key(self, tenant: str, service: str, operation: str, now_s: float) -> tuple[str, str, str]:
        tenant = self._tenants.admit("tenant", tenant, now_s)
        service = self._services.admit(tenant, service, now_s)
        return tenant, service, self._operations.admit(f"{tenant}\x00{service}", operation, now_s)

    def add_table(self, partition: int, rows: pa.Table, now_s: float, now_ns: int) -> int:
        """Fold in the spans of one record (otel_traces columns, read by
        agents/score/spans.py); return the highest window index it fed (-1: none).

        ``now_s`` is monotonic wall time (partition idleness), ``now_ns`` the wall clock
        (spans stamped more than an hour ahead of it are dropped and counted). Spans of
        windows already closed are dropped and counted: as reread when the window was
        closed before a restart, else as late. Each distinct (tenant, service, operation)
        of the record goes through the cardinality limits once, at the time of its first
        span. Raises ValueError, with nothing folded in, for columns that cannot be read."""
        spans, window = self._placed(read_spans(rows), now_ns)
        if not len(spans):
            return -1
        per_span, raw_keys, first_ns = distinct_keys(spans)
        keys = [self._key(*raw, time_ns / NS_PER_S) for raw, time_ns in zip(raw_keys, first_ns, strict=True)]
        self._fold(spans, window, per_span, keys)
        nodes: dict[tuple[str, str], int] = {}
        node = np.array([nodes.setdefault((k[0], k[1]), len(nodes)) for k in keys])[per_span]
        self.graph.observe(pa.table({"trace_id": spans.text("trace_id"), "span_id": spans.text("span_id"),
                                     "parent_span_id": spans.text("parent_span_id"), "window": window,
                                     "node": node}), list(nodes))
        self.clock.observe(partition, int(spans.time_ns.max()), now_s)
        return int(window.max())

    def _fold(self, spans: Spans, window: np.ndarray, per_span: np.ndarray, keys: list[Key]) -> None:
        """Merge the partial aggregates of ``spans`` (span i of key ``keys[per_span[i]]``, in
        window ``window[i]``) into the open windows."""
        # Each span counts for its service-wide key, and for its operation's key unless it
        # is the service-wide one (a span without a name).
        targets: dict[Key, int] = {}
        service_target = np.array([targets.setdefault((k[0], k[1], SERVICE_WIDE), len(targets)) for k in keys])
        operation_target = np.array([-1 if k[2] == SERVICE_WIDE else targets.setdefault(k, len(targets))
                                     for k in keys])[per_span]
        named = operation_target >= 0
        at = np.concatenate([np.flatnonzero(named), np.arange(len(spans))])
        key_of = list(targets)
        for target, index, partial in window_partials(
                spans, window, at, np.concatenate([operation_target[named], service_target[per_span]])):
            aggs = self.windows.setdefault(index, {})
            agg = aggs.get(key_of[target])
            if agg is None:
                aggs[key_of[target]] = partial
            else:
                agg.merge(partial)

    def _placed(self, spans: Spans, now_ns: int) -> tuple[Spans, np.ndarray]:
        """``spans`` and their windows, without (but counted) those of the far future and
        those of windows already closed."""
        self.read_spans += len(spans)
        future = spans.time_ns > now_ns + FUTURE_TOLERANCE_NS
        window = spans.time_ns // self.window_ns
        closed = ~future & (window <= self.closed_through)
        reread = int(np.count_nonzero(closed & (window <= self.restored_through)))
        self.future_spans += int(np.count_nonzero(future))
        self.reread_spans += reread
        self.late_spans += int(np.count_nonzero(closed)) - reread
        keep = ~(future | closed)
        return spans.select(keep), window[keep]

    def close_ready(self, now_s: float, assigned: Iterable[int] | None = None) -> ClosedWindows | None:
        """Close every window the watermark has passed; None when none is ready."""
        mark = self.clock.watermark_ns(now_s, assigned)
        if mark is None:
            return None
        through = mark // self.window_ns - 1  # the window containing the watermark stays open
        if through <= self.closed_through or not any(w <= through for w in self.windows):
            return None
        return self.close(through)

    def close(self, through: int) -> ClosedWindows:
        """Score and close every open window with an index <= ``through``, oldest first."""
        out = ClosedWindows()
        windows = sorted(w for w in self.windows if w <= through)
        for window in windows:
            self._close_one(window, self.windows.pop(window), out)
        self.closed_through = max(self.closed_through, through)
        out.alerts += self.predictor.close(len(windows), (through + 1) * self.window_ns)
        out.closed_through = self.closed_through
        self.graph.forget(through - self.graph_windows)
        out.evicted = self._evict(through)
        for key in out.evicted:
            if key[2] == SERVICE_WIDE:
                alert = self._forget_service(key[0], key[1], through)
                if alert is not None:
                    out.alerts.append(alert)
                out.alerts += self.predictor.forget(key[0], key[1], (through + 1) * self.window_ns)
        return out

    def _zero_fill(self, window: int, aggs: dict[Key, WindowAggregate]) -> None:
        # A busy key that sent nothing is a throughput drop to zero, not a missing window.
        for key, detector in self.detectors.items():
            if key in aggs or len(detector.history) < self.config.min_history_windows:
                continue
            counts = sorted(h.spans for h in detector.history)
            if counts[len(counts) // 2] >= self.config.min_spans:
                aggs[key] = WindowAggregate()

    def _close_one(self, window: int, aggs: dict[Key, WindowAggregate], out: ClosedWindows) -> None:
        self._zero_fill(window, aggs)
        start_ns = window * self.window_ns
        by_service: dict[tuple[str, str], list[tuple[Key, Score, WindowAggregate, str]]] = {}
        service_rows: dict[tuple[str, str], dict[str, Any]] = {}
        for key in sorted(aggs):
            agg = aggs[key]
            f = features_of(agg)
            detector = self.detectors.get(key)
            if detector is None:
                detector = self.detectors[key] = Detector(self.config)
            score = detector.score(f, start_ns)
            learned = detector.learn(f, score, start_ns)
            if agg.spans:
                self.last_seen[key] = window
            detail = describe_score(score.reason, f, score)
            if learned == LEVEL_SHIFT:  # the one annotation of a new level; the alert resolves
                detail = describe_shift(f, score, self.config.max_frozen_windows)
            by_service.setdefault((key[0], key[1]), []).append((key, score, agg, detail))
            row = self._row(key, start_ns, f, score, learned, _exemplar(agg, score.reason), detail)
            out.rows.append(row)
            if key[2] == SERVICE_WIDE:
                service_rows[(key[0], key[1])] = row
                self.predictor.observe(key[0], key[1], f)
            out.scores.append((key, score.score))
        signals: dict[tuple[str, str], WindowSignal] = {}
        for (tenant, service), scored in by_service.items():
            eligible = [s for s in scored if s[0][2] == SERVICE_WIDE or s[2].spans >= self.config.min_spans]
            key, score, agg, detail = max(eligible or scored, key=lambda s: (s[1].score, s[0][2] == SERVICE_WIDE))
            cid, trace = _exemplar(agg, score.reason)
            signals[(tenant, service)] = WindowSignal(tenant, service, key[2], score.score, score.reason, start_ns,
                                                      start_ns + self.window_ns, cid, trace, detail)
        signals = self._explain(window, signals)
        for (tenant, service), signal in signals.items():
            if (tenant, service) in service_rows:
                service_rows[(tenant, service)].update(
                    AlertScore=signal.score, AlertOperation=signal.operation, AlertReason=signal.reason,
                    AlertCorrelationId=signal.correlation_id, AlertTraceId=signal.trace_id,
                    AlertDetail=signal.detail, AlertInhibitedBy=list(signal.inhibited_by),
                    Callees=self.graph.callees(tenant, service, window))
            alert = self.tracker.observe(signal)
            if alert is not None:
                out.alerts.append(alert)

    def _explain(self, window: int,
                 signals: dict[tuple[str, str], WindowSignal]) -> dict[tuple[str, str], WindowSignal]:
        """The signals with the anomalies of other services that explain them, and that they explain."""
        anomalous: dict[str, dict[str, str]] = {}
        for (tenant, service), signal in signals.items():
            if signal.score >= self.config.threshold:
                anomalous.setdefault(tenant, {})[service] = signal.reason
        for tenant, services in anomalous.items():
            if len(services) < 2:
                continue
            causes = explaining(self.graph.graph(tenant, window - self.graph_windows), services)
            effects = explained_by(causes)
            for service in set(causes) | set(effects):
                signals[(tenant, service)] = replace(signals[(tenant, service)],
                                                     inhibited_by=tuple(causes.get(service, ())),
                                                     explains=tuple(effects.get(service, ())))
        return signals

    def _row(self, key: Key, start_ns: int, f: WindowFeatures, score: Score, learned: int, exemplar: Exemplar,
             detail: str) -> dict[str, Any]:
        row: dict[str, Any] = {
            "Timestamp": start_ns, "WindowSeconds": self.config.window_s, "Tenant": key[0],
            "ServiceName": key[1], "SpanName": key[2], "Spans": f.spans, "Errors": f.errors,
            "ErrorRate": f.error_rate, "P50Ms": f.p50_ms, "P95Ms": f.p95_ms,
            "Score": score.score, "Reason": "level_shift" if learned == LEVEL_SHIFT else score.reason,
            "Detail": detail, "Learned": learned, "Warming": int(score.warming),
            "ExemplarCorrelationId": exemplar[0], "ExemplarTraceId": exemplar[1],
            "AlertScore": 0.0, "AlertOperation": "", "AlertReason": "", "AlertCorrelationId": "",
            "AlertTraceId": "", "AlertDetail": "", "AlertInhibitedBy": [], "Callees": [],
        }
        for name in FEATURES:
            row[_Z_COLUMNS[name]] = round(max(min(score.z[name], 1e9), -1e9), 6)
            row[_BASELINE_COLUMNS[name]] = score.baseline[name]
        return row

    def _evict(self, through: int) -> list[Key]:
        cutoff = through - self.evict_windows
        gone = [k for k, seen in self.last_seen.items() if seen < cutoff]
        gone += [k for k in self.detectors if k not in self.last_seen]  # never had spans (zero-filled only)
        for key in gone:
            self.last_seen.pop(key, None)
            self.detectors.pop(key, None)
        return sorted(set(gone))

    def _forget_service(self, tenant: str, service: str, through: int) -> Alert | None:
        # A service that went quiet for good resolves its alert: nothing can resolve it later.
        state = self.tracker.states.pop((tenant, service), None)
        if state is None or state.open is None:
            return None
        end_ns = (through + 1) * self.window_ns
        return state.open.resolve(end_ns, end_ns)

    def restore(self, rows: Iterable[Mapping[str, Any]], open_alerts: Iterable[Alert]) -> int:
        """Rebuild detectors, alert states and the closed mark from stored windows (oldest
        first, as written by ``close``) and the alerts still firing; return the windows read."""
        signals: dict[tuple[str, str], list[WindowSignal]] = {}
        rows = list(rows)
        windows = {int(row["Timestamp"]) // self.window_ns for row in rows}
        # Detectors replay the last restore_windows windows, alert states and the call graph
        # need the last history + frozen ones; the predictor's series may reach further back.
        last = max(windows, default=0)
        first_detected = last - max(self.config.restore_windows, self.graph_windows)
        for row in rows:
            start_ns = int(row["Timestamp"])
            window = start_ns // self.window_ns
            key = self._key(row["Tenant"], row["ServiceName"], row["SpanName"], start_ns / NS_PER_S)
            f = WindowFeatures(int(row["Spans"]), int(row["Errors"]), row["P50Ms"], row["P95Ms"])
            if key[2] == SERVICE_WIDE:
                self.predictor.observe(key[0], key[1], f)
            if window <= first_detected:
                continue
            detector = self.detectors.get(key)
            if detector is None:
                detector = self.detectors[key] = Detector(self.config)
            detector.restore(f, int(row["Learned"]), start_ns)
            if f.spans:
                self.last_seen[key] = max(window, self.last_seen.get(key, window))
            if key[2] == SERVICE_WIDE and window > last - self.graph_windows:
                signals.setdefault((key[0], key[1]), []).append(WindowSignal(
                    key[0], key[1], row["AlertOperation"], float(row["AlertScore"]), row["AlertReason"], start_ns,
                    start_ns + self.window_ns, row["AlertCorrelationId"], row["AlertTraceId"], row["AlertDetail"],
                    tuple(row.get("AlertInhibitedBy") or ())))
                for callee in row.get("Callees") or ():
                    self.graph.add_edge(key[0], key[1], callee, window)
        alerts = list(open_alerts)
        self.predictor.restore(a for a in alerts if a.labels.get("predicted") == "true")
        opened = {(a.labels.get("tenant", ""), a.labels.get("service", "")): a for a in alerts
                  if a.labels.get("predicted") != "true"}
        for service in set(signals) | set(opened):
            recent = signals.get(service, [])[-(self.config.fire_windows + self.config.resolve_windows):]
            self.tracker.restore(service[0], service[1], recent, opened.get(service))
        if windows:
            self.closed_through = max(self.closed_through, max(windows))
            self.restored_through = self.closed_through
        return len(windows)

    def open_alerts(self) -> list[Alert]:
        """Every alert still firing: anomaly alerts and predicted ones."""
        return self.tracker.open_alerts() + self.predictor.open_alerts()
