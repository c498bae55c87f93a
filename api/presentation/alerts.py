"""Anomaly windows, alerts, service health, trends and insights as API JSON (pure)."""
from __future__ import annotations

from collections.abc import Iterable

import orjson

from api.presentation.rows import iso_ns, ms
from core.types import Row

_Z = {"latency_p50": "ZLatencyP50", "latency_p95": "ZLatencyP95", "error_rate": "ZErrorRate",
      "throughput": "ZThroughput"}
_BASELINE = {"latency_p50_ms": "BaselineP50Ms", "latency_p95_ms": "BaselineP95Ms",
             "error_rate": "BaselineErrorRate", "spans": "BaselineSpans"}


def anomaly_json(row: Row, api_url: str) -> Row:
    cid = row["ExemplarCorrelationId"]
    return {
        "timestamp": iso_ns(row["ts_ns"]), "window_s": int(row["WindowSeconds"]), "service": row["ServiceName"],
        "operation": row["SpanName"] or None, "tenant": row["Tenant"] or None, "score": row["Score"],
        "reason": row["Reason"] or None, "detail": row["Detail"] or None, "spans": int(row["Spans"]),
        "errors": int(row["Errors"]), "error_rate": row["ErrorRate"], "p50_ms": row["P50Ms"], "p95_ms": row["P95Ms"],
        "z": {name: row[column] for name, column in _Z.items()},
        "baseline": {name: row[column] for name, column in _BASELINE.items()},
        "learned": bool(row["Learned"]), "warming": bool(row["Warming"]),
        # Service-wide rows: the services it called, and the anomalous ones that explain
        # this window (it then did not count towards an alert of its own).
        "callees": list(row.get("Callees") or []), "explained_by": list(row.get("AlertInhibitedBy") or []),
        "exemplar": {"correlation_id": cid or None, "trace_id": row["ExemplarTraceId"] or None,
                     "lookup_url": f"{api_url}/api/v1/correlate/{cid}" if cid else None},
    }


def alert_json(row: Row) -> Row:
    """A stored alert as published on the topic."""
    found: Row = orjson.loads(row["payload"])
    return found


def health_json(row: Row, threshold: float) -> Row:
    firing, critical = int(row["firing"] or 0), int(row["critical"] or 0)
    windows = int(row["windows"] or 0)
    latest = row["latest_score"]
    if critical:
        status = "critical"
    elif firing or (latest is not None and latest >= threshold):
        status = "degraded"
    elif windows:
        status = "healthy"
    else:
        status = "unknown"
    spans, errors = int(row["spans"] or 0), int(row["errors"] or 0)
    return {
        "service": row["service"], "status": status, "firing_alerts": firing, "windows": windows,
        "latest_window": iso_ns(row["latest_ns"]) if row["latest_ns"] else None, "latest_score": latest,
        "max_score": row["max_score"], "latest_p95_ms": row["latest_p95_ms"], "spans": spans, "errors": errors,
        "error_rate": round(errors / spans, 6) if spans else None,
    }


def bucket_value(row: Row, metric: str, step_s: int) -> float:
    """A bucket row's value of ``metric`` (latency in ms, error rate, spans per minute)."""
    spans = int(row["spans"])
    if metric == "error_rate":
        return int(row["errors"]) / spans if spans else 0.0
    if metric == "throughput":
        return spans * 60.0 / step_s
    key = "p50_ns" if metric == "latency_p50_ms" else "p95_ns"
    return ms(row[key] or 0)


def trend_json(points: list[tuple[int, float]], flat_change: float = 0.1) -> Row:
    """Least-squares slope per hour, change from the first to the last third, and a direction."""
    n = len(points)
    if n < 2:
        return {"slope_per_hour": None, "change_ratio": None, "direction": "unknown"}
    xs = [t / 3.6e12 for t, _ in points]  # hours
    ys = [v for _, v in points]
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    third = max(1, n // 3)
    first, last = sum(ys[:third]) / third, sum(ys[-third:]) / third
    change = (last - first) / first if first else (None if last else 0.0)
    if change is None:
        direction = "rising"
    elif abs(change) < flat_change:
        direction = "flat"
    else:
        direction = "rising" if change > 0 else "falling"
    return {"slope_per_hour": round(slope, 6), "change_ratio": None if change is None else round(change, 4),
            "direction": direction}


def build_insights(alerts: Iterable[Row], top: Iterable[Row], trends: Iterable[Row], limit: int) -> list[Row]:
    """Findings worth a look, most important first: firing alerts (critical first), alerts
    resolved in the range, then for services without an alert: the worst anomalous window,
    and p95 latency or error rate rising by half or more."""
    out: list[tuple[tuple[int, float], Row]] = []
    alerted = set()
    for alert in alerts:
        labels, notes = alert["labels"], alert["annotations"]
        alerted.add(labels.get("service"))
        firing = alert["status"] == "firing"
        rank = (0 if labels.get("severity") == "critical" else 1) if firing else 2
        out.append(((rank, -float(notes.get("score", "0") or 0)), {
            "kind": ("predicted_breach" if labels.get("predicted") == "true" else "firing_alert") if firing
            else "resolved_alert",
            "severity": labels.get("severity", "warning") if firing else "info", "service": labels.get("service"),
            "operation": labels.get("operation"), "title": notes.get("summary", ""),
            "detail": notes.get("description", ""), "since": alert["startsAt"],
            "until": None if firing else alert["endsAt"],
            "links": {"alert": alert["generatorURL"], "correlation": notes.get("correlation_url")},
            "fingerprint": alert["fingerprint"]}))
    worst: dict[str, Row] = {}
    for row in top:
        if row["service"] not in alerted and row["score"] > worst.get(row["service"], {"score": -1.0})["score"]:
            worst[row["service"]] = row
    for row in worst.values():
        out.append(((3, -row["score"]), {
            "kind": "anomalous_window", "severity": "info", "service": row["service"],
            "operation": row["operation"], "title": f"{row['service']}: score {row['score']:.2f} without an alert",
            "detail": row["detail"] or "", "since": row["timestamp"], "until": None,
            "links": {"correlation": row["exemplar"]["lookup_url"]}}))
    for trend in trends:
        change = trend["change_ratio"]
        if trend["direction"] != "rising" or change is None or change < 0.5 or trend["service"] in alerted:
            continue
        out.append(((4, -change), {
            "kind": "rising_trend", "severity": "info", "service": trend["service"], "operation": None,
            "title": f"{trend['service']}: {trend['metric']} up {change * 100:.0f} % over the range",
            "detail": f"slope {trend['slope_per_hour']} per hour", "since": None, "until": None, "links": {}}))
    out.sort(key=lambda item: item[0])
    return [item[1] for item in out[:limit]]
