"""Incident findings as JSON: the window asked about, each candidate with its evidence, and
the root cause (the request side of api/rca/analyses.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import networkx as nx

from api import params as p
from api.presentation.rows import iso_ns
from api.rca.incident import Candidate, confidence, trace_signal
from api.rca.incident_evidence import IncidentData

EVIDENCE_WINDOWS = 3
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class IncidentQuery:
    """The window analysed, the service asked about (None: any) and the alert it came from."""

    time: p.TimeRange
    service: str | None
    fingerprint: str | None

    def to_json(self) -> dict[str, Any]:
        return {"start": iso_ns(self.time.start_ns), "end": iso_ns(self.time.end_ns), "service": self.service,
                "alert_fingerprint": self.fingerprint}


def fingerprint_value(text: str) -> str:
    """An alert fingerprint (16 hex digits, any case) in lower case; ParamError otherwise."""
    fingerprint = text.lower()
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise p.ParamError("alert_fingerprint", "must be 16 hex digits (an alert's fingerprint)")
    return fingerprint


def within(data: IncidentData, service: str | None) -> set[str] | None:
    """A service and every service it calls (the causes its symptoms can have)."""
    if service is None:
        return None
    graph = data.graph()
    return {service} | (nx.descendants(graph, service) if service in graph else set())


def candidate_json(data: IncidentData, c: Candidate) -> dict[str, Any]:
    """A candidate with its evidence: anomaly windows, calls into it, trace figures and examples."""
    now, before = data.window.get(c.service), data.baseline.get(c.service)
    signal = trace_signal(now, before)
    windows = sorted((a for a in data.anomalies if a.service == c.service), key=lambda a: -a.score)
    return {
        "service": c.service, "score": c.score, "kind": c.kind,
        "evidence": {
            "anomaly_windows": [{"window_start": iso_ns(a.start_ns), "score": round(a.score, 4), "feature": a.reason,
                                 "detail": a.detail, "explained_by": list(a.inhibited_by),
                                 "trace_id": a.trace_id or None} for a in windows[:EVIDENCE_WINDOWS]],
            "calls_in": [{"caller": k.caller, "calls": k.calls, "errors": k.errors,
                          "example_trace_id": k.error_trace_id or None, "example_span_id": k.error_span_id or None}
                         for k in data.calls if k.callee == c.service],
            "traces": {
                "requests": now.requests if now else 0, "failed_requests": now.failed_requests if now else 0,
                "origin_errors": now.origin_errors if now else 0,
                "origin_error_rate": round(now.origin_rate, 4) if now else 0.0,
                "baseline_origin_error_rate": round(before.origin_rate, 4) if before else None,
                "self_ms_per_request": round(now.self_ms_per_request, 3) if now else 0.0,
                "baseline_self_ms_per_request": round(before.self_ms_per_request, 3) if before else None,
                "error_z": round(signal.error_z, 3), "self_time_rise": round(signal.self_rise, 3)},
            "examples": _examples(data, c),
        },
    }


def _examples(data: IncidentData, c: Candidate) -> list[dict[str, Any]]:
    now = data.window.get(c.service)
    if now is None:
        return []
    out = []
    if now.error_trace_id:
        out.append({"why": "error started here", "operation": now.error_operation, "trace_id": now.error_trace_id,
                    "span_id": now.error_span_id, "message": now.error_message or None})
    if now.slow_trace_id:
        out.append({"why": "most self time", "operation": now.slow_operation, "trace_id": now.slow_trace_id,
                    "span_id": now.slow_span_id, "message": None})
    return out if c.kind != "latency" else out[::-1]


def root_cause_json(data: IncidentData, ranked: list[Candidate]) -> dict[str, Any] | None:
    if not ranked or ranked[0].score <= 0:
        return None
    top = ranked[0]
    now = data.window.get(top.service)
    operation = (now.error_operation if top.kind == "error" else now.slow_operation) if now else ""
    peak = data.peak(top.service)
    return {"service": top.service, "operation": operation or (peak.operation if peak else "") or None,
            "kind": top.kind, "confidence": confidence(ranked, data)}


