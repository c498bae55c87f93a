"""The alert format on the alerts topic (Alertmanager fields) and the anomaly and alert rows."""
from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from core.errors import DecodeError

ALERTS_TABLE = "ollystack_alerts"
ANOMALIES_TABLE = "ollystack_anomalies"
ANOMALY_ALERTNAME = "OllyStackAnomaly"
PREDICTED_ALERTNAME = "OllyStackPredictedBreach"
# Alertmanager's rendering of "no end yet" (Go's zero time).
ZERO_TIME = "0001-01-01T00:00:00Z"
Status = Literal["firing", "resolved"]
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (Prometheus' FNV-1a 64 over the sorted
    names and values, each followed by 0xff), as 16 hex digits: the same alert gets the
    same fingerprint here, on the topic and in Alertmanager."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def rfc3339_ns(ns: int) -> str:
    """Unix nanoseconds as RFC 3339 UTC with milliseconds: 2025-11-23T00:00:10.000Z."""
    seconds, fraction = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction // 1_000_000:03d}Z"


def parse_rfc3339_ns(text: str) -> int | None:
    """The inverse of rfc3339_ns (UTC 'Z' only); None for ZERO_TIME. DecodeError otherwise."""
    if text == ZERO_TIME:
        return None
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise DecodeError(f"not an RFC 3339 UTC time: {text[:40]!r}")
    parts = [int(g) for g in match.groups()[:6]]
    seconds = calendar.timegm((*parts, 0, 0, 0))
    return seconds * 1_000_000_000 + int((match.group(7) or "0").ljust(9, "0"))


@dataclass(frozen=True)
class Alert:
    """One alert in one state. Labels identify it (and give the fingerprint); they do
    not change between its firing and resolved messages."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at_ns: int
    generator_url: str
    status: Status = "firing"
    ends_at_ns: int | None = None
    updated_at_ns: int = 0  # event time of this state (the window that decided it)
    score: float = 0.0
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", fingerprint(self.labels))

    def resolve(self, ends_at_ns: int, updated_at_ns: int) -> Alert:
        return replace(self, status="resolved", ends_at_ns=ends_at_ns, updated_at_ns=updated_at_ns)

    def to_json(self) -> dict[str, Any]:
        """The alert as published: Alertmanager's fields plus fingerprint, status and updatedAt
        (as Alertmanager's own API shows them); updatedAt is the event time that decided it."""
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339_ns(self.starts_at_ns),
            "endsAt": ZERO_TIME if self.ends_at_ns is None else rfc3339_ns(self.ends_at_ns),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "updatedAt": rfc3339_ns(self.updated_at_ns or self.starts_at_ns),
        }

    def to_alertmanager(self) -> dict[str, Any]:
        """The body item of Alertmanager's POST /api/v2/alerts (a firing alert has no endsAt)."""
        body = {"labels": dict(self.labels), "annotations": dict(self.annotations),
                "startsAt": rfc3339_ns(self.starts_at_ns), "generatorURL": self.generator_url}
        if self.ends_at_ns is not None:
            body["endsAt"] = rfc3339_ns(self.ends_at_ns)
        return body

    def to_row(self) -> dict[str, Any]:
        """The alert as a row of ollystack_alerts."""
        labels = self.labels
        return {
            "Fingerprint": self.fingerprint, "Status": self.status,
            "AlertName": labels.get("alertname", ""), "Tenant": labels.get("tenant", ""),
            "ServiceName": labels.get("service", ""), "Operation": labels.get("operation", ""),
            "Severity": labels.get("severity", ""), "Predicted": int(labels.get("predicted") == "true"),
            "CorrelationId": self.annotations.get("correlation_id", ""), "Score": float(self.score),
            "StartsAt": self.starts_at_ns, "EndsAt": self.ends_at_ns or 0, "UpdatedAt": self.updated_at_ns,
            "Labels": dict(labels), "Annotations": dict(self.annotations),
            "GeneratorURL": self.generator_url, "Payload": encode_alert(self).decode(),
        }


def encode_alert(alert: Alert) -> bytes:
    return orjson.dumps(alert.to_json())


def decode_alert(value: bytes | str) -> Alert:
    """An alert from its topic JSON; DecodeError naming what is wrong otherwise."""
    try:
        data = orjson.loads(value)
        labels, annotations = data["labels"], data["annotations"]
        status = data["status"]
        starts = parse_rfc3339_ns(data["startsAt"])
        ends = parse_rfc3339_ns(data["endsAt"])
        url = data["generatorURL"]
        updated = parse_rfc3339_ns(data["updatedAt"]) if "updatedAt" in data else None
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise DecodeError(f"not an alert: {exc!r}") from None
    if status not in ("firing", "resolved") or starts is None:
        raise DecodeError("not an alert: bad status or startsAt")
    if not (isinstance(labels, dict) and isinstance(annotations, dict)
            and all(isinstance(v, str) for v in (*labels.values(), *annotations.values()))):
        raise DecodeError("not an alert: labels and annotations must map names to strings")
    score = annotations.get("score", "0")
    try:
        score_value = float(score)
    except ValueError:
        score_value = 0.0
    alert = Alert(labels, annotations, starts, str(url), status, ends, updated or ends or starts, score_value)
    if data.get("fingerprint") not in (None, alert.fingerprint):
        raise DecodeError("not an alert: fingerprint does not match its labels")
    return alert
