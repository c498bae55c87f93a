"""The alert state machine: k windows over the threshold fire, m windows under it resolve (pure).

One state per (tenant, service): an incident fires one alert, whichever of the service's
operations and features drive it, and the alert keeps its labels (and so its
fingerprint) until it resolves, so consumers see exactly one firing and one resolved
message per incident."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from schemas.alerts import ANOMALY_ALERTNAME, Alert

FEATURE_TEXT = {"latency_p50": "p50 latency", "latency_p95": "p95 latency", "error_rate": "error rate",
                "throughput": "throughput"}
SERVICE_WIDE_OPERATION = "*"


@dataclass(frozen=True)
class WindowSignal:
    """The alerting view of one service in one window: its highest score and what drove it."""

    tenant: str
    service: str
    operation: str  # the operation with the highest score; "" when service-wide
    score: float
    reason: str  # the feature behind the score
    window_start_ns: int
    window_end_ns: int
    correlation_id: str  # an exemplar span's correlation ID (the offending one)
    trace_id: str
    detail: str  # "p95 latency 812 ms vs baseline 41 ms (z 18.2)"
    # Anomalous services it calls that explain this anomaly (agents/score/topology.py):
    # while there are any, the window counts as normal for this service's alert.
    inhibited_by: tuple[str, ...] = ()
    explains: tuple[str, ...] = ()  # anomalous callers this service's anomaly explains

    def high(self, threshold: float) -> bool:
        """Whether the window counts towards firing: over the threshold and not explained."""
        return self.score >= threshold and not self.inhibited_by


@dataclass(frozen=True)
class AlertPolicy:
    threshold: float
    critical_threshold: float
    fire_windows: int
    resolve_windows: int
    api_url: str


@dataclass
class AlertState:
    high: int = 0  # windows in a row at or above the threshold, not firing yet
    low: int = 0  # windows in a row under the threshold while firing
    first_high_ns: int = 0
    peak: WindowSignal | None = None
    open: Alert | None = None


def build_alert(signal: WindowSignal, starts_at_ns: int, fired_at_ns: int, policy: AlertPolicy) -> Alert:
    """The firing alert of ``signal`` (the peak window of the run that fired at ``fired_at_ns``)."""
    operation = signal.operation or SERVICE_WIDE_OPERATION
    labels = {"alertname": ANOMALY_ALERTNAME, "service": signal.service, "operation": operation,
              "severity": "critical" if signal.score >= policy.critical_threshold else "warning"}
    if signal.tenant:
        labels["tenant"] = signal.tenant
    # Alertmanager treats an empty label as absent (a window with no spans has no exemplar).
    labels = {name: value for name, value in labels.items() if value}
    feature = FEATURE_TEXT.get(signal.reason, signal.reason or "behaviour")
    where = signal.service if operation == SERVICE_WIDE_OPERATION else f"{signal.service} {operation}"
    annotations = {
        "summary": f"{where}: anomalous {feature} (score {signal.score:.2f})",
        "description": f"{signal.detail}; exemplar trace {signal.trace_id or 'unknown'}",
        "correlation_url": f"{policy.api_url}/api/v1/correlate/{quote(signal.correlation_id, safe='')}",
        "score": f"{signal.score:.4f}",
        "feature": signal.reason,
        "trace_id": signal.trace_id,
    }
    if signal.correlation_id:
        # An annotation, not a label: the exemplar's ID differs from window to window, and as
        # a label it would give every incident a new fingerprint, so Alertmanager (which
        # groups and dedups by labels) would see a new alert each time.
        annotations["correlation_id"] = signal.correlation_id
    if signal.explains:
        annotations["impact"] = f"also anomalous, explained by this: {', '.join(signal.explains)}"
    query = {"service": signal.service, "start": str(starts_at_ns // 1_000_000),
             "end": str(signal.window_end_ns // 1_000_000)}
    if operation != SERVICE_WIDE_OPERATION:
        query["operation"] = operation
    return Alert(labels, annotations, starts_at_ns, f"{policy.api_url}/api/v1/anomalies?{urlencode(query)}",
                 "firing", None, fired_at_ns, signal.score)


@dataclass
class AlertTracker:
    """Alert states per (tenant, service)."""

    policy: AlertPolicy
    states: dict[tuple[str, str], AlertState] = field(default_factory=dict)

    def observe(self, signal: WindowSignal) -> Alert | None:
        """Fold one window of one service in; return the alert that fired or resolved, if any."""
        state = self.states.setdefault((signal.tenant, signal.service), AlertState())
        high = signal.high(self.policy.threshold)
        if state.open is None:
            if not high:
                state.high, state.peak = 0, None
                return None
            if state.high == 0:
                state.first_high_ns = signal.window_start_ns
            state.high += 1
            if state.peak is None or signal.score > state.peak.score:
                state.peak = signal
            if state.high < self.policy.fire_windows:
                return None
            state.open = build_alert(state.peak, state.first_high_ns, signal.window_end_ns, self.policy)
            state.high, state.low, state.peak = 0, 0, None
            return state.open
        if high:
            state.low = 0
            return None
        if state.low == 0:
            state.first_high_ns = signal.window_start_ns  # here: the start of the normal run
        state.low += 1
        if state.low < self.policy.resolve_windows:
            return None
        resolved = state.open.resolve(state.first_high_ns, signal.window_end_ns)
        state.open, state.low, state.high = None, 0, 0
        return resolved

    def open_alerts(self) -> list[Alert]:
        return [s.open for s in self.states.values() if s.open is not None]

    def restore(self, tenant: str, service: str, recent: Iterable[WindowSignal], open_alert: Alert | None) -> None:
        """Set the state of a service from its stored windows (oldest first) and open alert."""
        state = AlertState(open=open_alert)
        for signal in recent:
            high = signal.high(self.policy.threshold)
            if open_alert is not None:
                if high:
                    state.low = 0
                else:
                    if state.low == 0:
                        state.first_high_ns = signal.window_start_ns
                    state.low += 1
            elif high:
                if state.high == 0:
                    state.first_high_ns = signal.window_start_ns
                state.high += 1
                if state.peak is None or signal.score > state.peak.score:
                    state.peak = signal
            else:
                state.high, state.peak = 0, None
        self.states[(tenant, service)] = state

    def forget(self, tenant: str, service: str) -> None:
        """Drop a quiet service's state (never one with an open alert)."""
        state = self.states.get((tenant, service))
        if state is not None and state.open is None:
            del self.states[(tenant, service)]
