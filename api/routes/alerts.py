"""/api/v1/anomalies, /alerts (list, stream, predict), /trends, /services/health and /insights."""
from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from agents.alerting import AlertPolicy, AlertTracker, WindowSignal
from agents.score.detector import Detector
from agents.score.features import WindowFeatures
from agents.score.forecast import (
    METRICS,
    ForecastError,
    forecast_breach,
    minute_series,
    predicted_alert,
)
from agents.score.logic import describe_score
from api import params as p
from api.bodies import json_object, text_fields
from api.presentation.alerts import (
    alert_json,
    anomaly_json,
    bucket_value,
    build_insights,
    health_json,
    trend_json,
)
from api.presentation.rows import iso_ns, ms
from api.queries.alerts import (
    AlertFilter,
    AnomalyFilter,
    alert_rows,
    alerts_inserted_since,
    anomaly_rows,
    service_buckets,
    service_health_rows,
    warehouse_now_ms,
)
from api.responses import JsonResponse
from api.runtime import runtime
from core.types import Row

BODY_MAX_BYTES = 64 * 1024
STREAM_POLL_S = 1.0
STREAM_KEEPALIVE_S = 15.0
STREAM_BATCH = 1000
MAX_WINDOWS = 5000
TREND_METRICS = {m: m for m in ("latency_p95_ms", "latency_p50_ms", "error_rate", "throughput")}
STATUSES = {"firing": "firing", "resolved": "resolved", "all": None}
BOOLEANS = {"true": True, "false": False}
# What each route accepts (query parameters, or JSON body fields for the POST routes).
ANOMALY_PARAMS = frozenset({"service", "operation", "min_score", "start", "end", "limit", "offset"})
ALERT_PARAMS = frozenset({"status", "service", "predicted", "start", "end", "limit", "offset"})
STREAM_PARAMS = frozenset({"service", "since", "limit"})
TREND_PARAMS = frozenset({"service", "operation", "metric", "step_s", "start", "end", "limit"})
WINDOW_PARAMS = frozenset({"start", "end", "limit"})
DETECT_FIELDS = frozenset({"service", "operation", "start", "end", "window_s"})
PREDICT_FIELDS = frozenset({"metric", "threshold", "service", "horizon_minutes", "history_minutes", "direction",
                            "limit"})
DIRECTIONS = {"above": "above", "below": "below"}


def _api_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _optional_name(q: Mapping[str, str], name: str) -> str | None:
    return p.name_value(q[name], name) if name in q else None


async def _body(request: Request, allowed: frozenset[str], required: frozenset[str] = frozenset()) -> dict[str, str]:
    """A JSON object body as one text value per field (numbers as written), checked like query parameters."""
    out = text_fields(await json_object(request, allowed, max_bytes=BODY_MAX_BYTES))
    for name in sorted(required - set(out)):
        raise p.ParamError(name, "is required")
    return out


def _time(q: Mapping[str, str], request: Request) -> p.TimeRange:
    rt = runtime(request)
    return p.time_range(q, rt.limits, rt.clock_ns())


def _window(time: p.TimeRange) -> dict[str, str]:
    return {"start": iso_ns(time.start_ns), "end": iso_ns(time.end_ns)}


async def list_anomalies(request: Request) -> Response:
    """Scored windows per service ("operation": null) and operation, newest first."""
    q = p.query_params(request, ANOMALY_PARAMS)
    rt = runtime(request)
    time = _time(q, request)
    page = p.page(q, rt.limits)
    f = AnomalyFilter(time, _optional_name(q, "service"), _optional_name(q, "operation"),
                      p.float_value(q["min_score"], "min_score", 0.0, 1e12) if "min_score" in q else 0.0)
    rows = await anomaly_rows(rt.warehouse, rt.scope(request), f, page)
    items = [anomaly_json(r, _api_url(request)) for r in rows]
    return JsonResponse({"time_range": _window(time), "anomalies": items,
                         "next_offset": page.offset + page.limit if len(items) == page.limit else None})


async def list_alerts(request: Request) -> Response:
    """Each alert's latest message (as published), most recently changed first."""
    q = p.query_params(request, ALERT_PARAMS)
    rt = runtime(request)
    time = p.optional_time_range(q, rt.limits, rt.clock_ns())
    page = p.page(q, rt.limits)
    f = AlertFilter(time, p.choice(q["status"], "status", STATUSES) if "status" in q else None,
                    _optional_name(q, "service"),
                    p.choice(q["predicted"], "predicted", BOOLEANS) if "predicted" in q else None)
    items = [alert_json(r) for r in await alert_rows(rt.warehouse, rt.scope(request), f, page)]
    return JsonResponse({"alerts": items,
                         "next_offset": page.offset + page.limit if len(items) == page.limit else None})


async def stream_alerts(request: Request) -> Response:
    """Server-sent events: one ``alert`` event (the published JSON) per alert message stored
    from ``since`` (default: now; or the Last-Event-ID header) on; ``limit`` ends the stream
    after that many events. Comments keep idle connections open."""
    q = p.query_params(request, STREAM_PARAMS)
    rt = runtime(request)
    scope = rt.scope(request)
    service = _optional_name(q, "service")
    limit = p.int_value(q["limit"], "limit", 1, 100_000) if "limit" in q else None
    last_id = request.headers.get("last-event-id")
    if "since" in q:
        since_ms = p.timestamp_ns(q["since"], "since") // p.NS_PER_MS
    elif last_id is not None:
        since_ms = p.int_value(last_id, "Last-Event-ID", 0, 10**13)
    else:
        since_ms = await warehouse_now_ms(rt.warehouse)

    async def events() -> AsyncIterator[str]:
        cursor: int = since_ms
        seen: set[tuple[Any, ...]] = set()
        sent, idle_s = 0, 0.0
        yield "retry: 3000\n\n"
        while True:
            rows = await alerts_inserted_since(rt.warehouse, scope, cursor, service, STREAM_BATCH)
            fresh = [r for r in rows if (r["inserted_ms"], r["Fingerprint"], r["starts_ns"], r["Status"]) not in seen]
            for row in fresh:
                yield f"id: {row['inserted_ms']}\nevent: alert\ndata: {row['payload']}\n\n"
                sent += 1
                if limit is not None and sent >= limit:
                    return
            if rows:
                cursor = int(rows[-1]["inserted_ms"])
                # Rows of the cursor's millisecond come back next time: remember them.
                seen = {(r["inserted_ms"], r["Fingerprint"], r["starts_ns"], r["Status"])
                        for r in rows if int(r["inserted_ms"]) == cursor}
            if fresh:
                idle_s = 0.0
                continue
            await asyncio.sleep(STREAM_POLL_S)
            idle_s += STREAM_POLL_S
            if idle_s >= STREAM_KEEPALIVE_S:
                idle_s = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _features(row: Row | None) -> WindowFeatures:
    if row is None:
        return WindowFeatures(0, 0, None, None)
    return WindowFeatures(int(row["spans"]), int(row["errors"]), ms(row["p50_ns"] or 0), ms(row["p95_ns"] or 0))


async def detect(request: Request) -> Response:
    """Score a service's (or operation's) stored spans window by window with the stage's
    detector and alert rule, from an empty baseline: which windows are anomalous, and which
    alerts would have fired."""
    body = await _body(request, DETECT_FIELDS, frozenset({"service"}))
    rt = runtime(request)
    service = p.name_value(body["service"], "service")
    operation = _optional_name(body, "operation")
    window_s = _minutes_s(body["window_s"], "window_s", 3600) if "window_s" in body else 60
    time = _time(body, request)
    step_ns = window_s * p.NS_PER_S
    first, last = time.start_ns // step_ns, (time.end_ns - 1) // step_ns
    if last - first + 1 > MAX_WINDOWS:
        raise p.ParamError("window_s", f"the range holds more than {MAX_WINDOWS} windows; use longer windows")
    rows = await service_buckets(rt.warehouse, rt.scope(request), time, window_s, service, operation,
                                 MAX_WINDOWS + 1)
    by_window = {int(r["bucket_ns"]) // step_ns: r for r in rows}
    config = runtime(request).score.replace(window_s=window_s)
    detector = Detector(config)
    tracker = AlertTracker(AlertPolicy(config.threshold, config.critical_threshold, config.fire_windows,
                                       config.resolve_windows, _api_url(request)))
    windows: list[Row] = []
    alerts: list[Row] = []
    for index in range(first, last + 1):
        row = by_window.get(index)
        f = _features(row)
        score = detector.score(f, index * step_ns)
        detector.learn(f, score, index * step_ns)
        detail = describe_score(score.reason, f, score)
        cid, trace = ("", "") if row is None else (
            (row["error_cid"], row["error_trace"]) if score.reason == "error_rate" and row["error_cid"]
            else (row["slow_cid"], row["slow_trace"]))
        alert = tracker.observe(WindowSignal("", service, operation or "", score.score, score.reason,
                                             index * step_ns, (index + 1) * step_ns, cid, trace, detail))
        if alert is not None:
            alerts.append(alert.to_json())
        windows.append({"start": iso_ns(index * step_ns), "spans": f.spans, "errors": f.errors,
                        "error_rate": f.error_rate, "p50_ms": f.p50_ms, "p95_ms": f.p95_ms, "score": score.score,
                        "reason": score.reason or None, "detail": detail or None, "warming": score.warming,
                        "exemplar_correlation_id": cid or None})
    return JsonResponse({"service": service, "operation": operation, "window_s": window_s,
                         "threshold": config.threshold, "time_range": _window(time), "windows": windows,
                         "anomalies": [w for w in windows if w["score"] >= config.threshold], "alerts": alerts})


async def predict(request: Request) -> Response:
    """Holt-Winters forecasts of each service's minute series; a forecast crossing
    ``threshold`` within ``horizon_minutes`` is a predicted alert (label predicted="true")."""
    body = await _body(request, PREDICT_FIELDS, frozenset({"metric", "threshold"}))
    rt = runtime(request)
    metric = p.choice(body["metric"], "metric", {m: m for m in METRICS})
    threshold = p.float_value(body["threshold"], "threshold", -1e12, 1e12)
    service = _optional_name(body, "service")
    horizon = p.int_value(body["horizon_minutes"], "horizon_minutes", 1, 1440) if "horizon_minutes" in body else 30
    history = p.int_value(body["history_minutes"], "history_minutes", 10, 10080) if "history_minutes" in body else 180
    direction = p.choice(body["direction"], "direction", DIRECTIONS) if "direction" in body else (
        "below" if metric == "throughput" else "above")
    limit = p.int_value(body["limit"], "limit", 1, 100) if "limit" in body else 20
    end_ns = rt.clock_ns() // (60 * p.NS_PER_S) * 60 * p.NS_PER_S  # whole minutes only
    time = p.TimeRange(end_ns - history * 60 * p.NS_PER_S, end_ns)
    rows = await service_buckets(rt.warehouse, rt.scope(request), time, 60, service, None, 200_000)
    per_service: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        per_service[row["service"]].append({**row, "minute_ns": row["bucket_ns"]})
    predictions, alerts = [], []
    for name in sorted(per_service)[:limit]:
        series = minute_series(per_service[name], time.start_ns, time.end_ns, metric)
        item: Row = {"service": name, "last_value": series[-1] if series else None}
        try:
            forecast = forecast_breach(series, threshold, horizon, direction=direction)  # type: ignore[arg-type]
        except ForecastError as exc:
            predictions.append({**item, "error": str(exc)})
            continue
        item.update(model=forecast.model, breach_in_minutes=forecast.breach_step,
                    forecast=[round(v, 6) for v in forecast.values])
        predictions.append(item)
        if forecast.breach_step:
            latest = per_service[name][-1]
            cid = latest["error_cid"] if metric == "error_rate" else latest["slow_cid"]
            alerts.append(predicted_alert(name, metric, threshold, forecast, end_ns, _api_url(request),
                                          correlation_id=cid or "").to_json())
    return JsonResponse({"metric": metric, "threshold": threshold, "direction": direction,
                         "horizon_minutes": horizon, "history_minutes": history, "predictions": predictions,
                         "alerts": alerts})


async def _trends(request: Request, time: p.TimeRange, metric: str, step_s: int, service: str | None,
                  operation: str | None, limit: int) -> list[Row]:
    rt = runtime(request)
    rows = await service_buckets(rt.warehouse, rt.scope(request), time, step_s, service, operation, 200_000)
    per_service: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        per_service[row["service"]].append((int(row["bucket_ns"]), bucket_value(row, metric, step_s)))
    out = []
    for name in sorted(per_service)[:limit]:
        points = per_service[name]
        out.append({"service": name, "metric": metric, **trend_json(points),
                    "points": [{"timestamp": iso_ns(t), "value": round(v, 6)} for t, v in points]})
    return out


def _minutes_s(text: str, name: str, highest_s: int) -> int:
    """A length in seconds that is whole minutes: series are read from per-minute rollups."""
    seconds = p.int_value(text, name, 60, highest_s)
    if seconds % 60:
        raise p.ParamError(name, "must be a multiple of 60 (whole minutes)")
    return seconds


def _step_s(time: p.TimeRange, buckets: int = 120) -> int:
    seconds = (time.end_ns - time.start_ns) / p.NS_PER_S / buckets
    return max(60, math.ceil(seconds / 60) * 60)


async def trends(request: Request) -> Response:
    """Per service: the metric per time step, its least-squares slope per hour, and the
    change from the first third of the range to the last."""
    q = p.query_params(request, TREND_PARAMS)
    rt = runtime(request)
    time = _time(q, request)
    metric = p.choice(q["metric"], "metric", TREND_METRICS) if "metric" in q else "latency_p95_ms"
    step_s = _minutes_s(q["step_s"], "step_s", 86400) if "step_s" in q else _step_s(time)
    if (time.end_ns - time.start_ns) // (step_s * p.NS_PER_S) > MAX_WINDOWS:
        raise p.ParamError("step_s", f"the range holds more than {MAX_WINDOWS} steps; use a longer step")
    services = await _trends(request, time, metric, step_s, _optional_name(q, "service"),
                             _optional_name(q, "operation"), p.page(q, rt.limits).limit)
    return JsonResponse({"time_range": _window(time), "metric": metric, "step_s": step_s, "services": services})


async def services_health(request: Request) -> Response:
    """Per service: healthy, degraded (an alert firing or the latest window anomalous),
    critical (a critical alert firing) or unknown (no scored window in the range)."""
    q = p.query_params(request, WINDOW_PARAMS)
    rt = runtime(request)
    time = _time(q, request)
    rows = await service_health_rows(rt.warehouse, rt.scope(request), time, p.page(q, rt.limits).limit)
    threshold = runtime(request).score.threshold
    return JsonResponse({"time_range": _window(time), "services": [health_json(r, threshold) for r in rows]})


async def insights(request: Request) -> Response:
    """Findings over the range, most important first (see build_insights)."""
    q = p.query_params(request, WINDOW_PARAMS)
    rt = runtime(request)
    time = _time(q, request)
    limit = p.int_value(q["limit"], "limit", 1, 100) if "limit" in q else 10
    scope = rt.scope(request)
    threshold = runtime(request).score.threshold
    firing = [alert_json(r) for r in await alert_rows(rt.warehouse, scope, AlertFilter(status="firing"),
                                                       p.Page(50, 0))]
    resolved = [alert_json(r) for r in await alert_rows(rt.warehouse, scope, AlertFilter(time, "resolved"),
                                                         p.Page(50, 0))]
    top = sorted((anomaly_json(r, _api_url(request)) for r in await anomaly_rows(
        rt.warehouse, scope, AnomalyFilter(time, min_score=threshold), p.Page(200, 0))),
        key=lambda a: -a["score"])[:20]
    step_s = _step_s(time, buckets=12)
    rising = []
    for metric in ("latency_p95_ms", "error_rate"):
        rising += await _trends(request, time, metric, step_s, None, None, 100)
    found = build_insights(firing + resolved, top, rising, limit)
    return JsonResponse({"time_range": _window(time), "insights": found})


ROUTES = [
    Route("/api/v1/anomalies", list_anomalies, methods=["GET"]),
    Route("/api/v1/anomalies/detect", detect, methods=["POST"]),
    Route("/api/v1/alerts", list_alerts, methods=["GET"]),
    Route("/api/v1/alerts/stream", stream_alerts, methods=["GET"]),
    Route("/api/v1/alerts/predict", predict, methods=["POST"]),
    Route("/api/v1/trends", trends, methods=["GET"]),
    Route("/api/v1/services/health", services_health, methods=["GET"]),
    Route("/api/v1/insights", insights, methods=["GET"]),
]
