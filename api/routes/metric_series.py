"""Metric series: gauges, sums and histograms per step and group, with their exemplars."""
from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.presentation.rows import exemplar_json, iso_ns, shown_id
from api.presentation.series import histogram_series, value_series
from api.queries.correlation import best_links
from api.queries.metric_series import (
    CUMULATIVE,
    DEFAULT_STEPS,
    DELTA,
    MAX_FILTERS,
    MAX_GROUP_BY_KEYS,
    MAX_ROWS,
    MAX_STEP_S,
    MAX_STEPS,
    GaugeAggregation,
    SeriesKind,
    SeriesQuery,
    gauge_steps,
    histogram_steps,
    metric_kinds,
    series_exemplars,
    sum_modes,
    sum_steps,
)
from api.queries.scope import QueryScope
from api.responses import JsonResponse, NotFoundError
from api.runtime import ApiRuntime, runtime

SERIES_PARAMS = frozenset({"start", "end", "step_s", "group_by", "filter", "kind", "aggregation"})
KINDS: dict[str, SeriesKind] = {"gauge": "gauge", "sum": "sum", "histogram": "histogram"}
AGGREGATIONS: dict[str, GaugeAggregation] = {"last": "last", "avg": "avg"}


def _step_s(q: dict[str, str], time: p.TimeRange) -> int:
    span_s = (time.end_ns - time.start_ns) / p.NS_PER_S
    if "step_s" not in q:  # about DEFAULT_STEPS steps, in whole tens of seconds
        return max(10, math.ceil(span_s / DEFAULT_STEPS / 10) * 10)
    step_s = p.int_value(q["step_s"], "step_s", 1, MAX_STEP_S)
    if span_s / step_s > MAX_STEPS:
        raise p.ParamError("step_s", f"the range holds more than {MAX_STEPS} steps; use a longer step")
    return step_s


async def _kind(rt: ApiRuntime, scope: QueryScope, metric: str, wanted: SeriesKind | None) -> tuple[SeriesKind, str]:
    """The kind to read and the metric's unit; NotFoundError or ParamError otherwise."""
    found = await metric_kinds(rt.warehouse, scope, metric)
    if not found:
        raise NotFoundError(f"no metric named {metric!r} is stored")
    usable = [k for k in KINDS.values() if k in found]
    if wanted is not None:
        if wanted not in found:
            raise p.ParamError("kind", f"{metric!r} is stored as {', '.join(sorted(found))}, not {wanted}")
        return wanted, found[wanted]
    if not usable:
        raise p.ParamError("metric_name", f"{metric!r} is stored as {', '.join(sorted(found))}; series are "
                                          "built for gauge, sum and histogram metrics")
    if len(usable) > 1:
        raise p.ParamError("kind", f"{metric!r} is stored as {' and '.join(usable)}; say which with kind")
    return usable[0], found[usable[0]]


def _applied(modes: set[tuple[int, bool]]) -> str:
    """What a sum's steps hold, from the (temporality, monotonic) pairs of its points."""
    if modes and all(t == CUMULATIVE and not m for t, m in modes):
        return "last"  # an up-down counter: read like a gauge
    names = {"sum" if t == DELTA else "increase" for t, _ in modes} or {"increase"}
    return "+".join(sorted(names))


async def metric_series(request: Request) -> Response:
    """One metric per step over the range, grouped by ``group_by``, filtered by ``filter``,
    with its exemplars; 404 for a metric never stored."""
    q = p.query_params(request, SERIES_PARAMS)
    metric = p.name_value(request.path_params["metric_name"], "metric_name")
    rt = runtime(request)
    time = p.time_range(q, rt.limits, rt.clock_ns())
    query = SeriesQuery(
        metric, time, _step_s(q, time),
        p.attribute_keys(q["group_by"], "group_by", MAX_GROUP_BY_KEYS) if "group_by" in q else (),
        p.attribute_filters(q["filter"], "filter", MAX_FILTERS) if "filter" in q else {},
        MAX_ROWS,
    )
    aggregation = p.choice(q["aggregation"], "aggregation", AGGREGATIONS) if "aggregation" in q else "last"
    scope = rt.scope(request)
    kind, unit = await _kind(rt, scope, metric, p.choice(q["kind"], "kind", KINDS) if "kind" in q else None)
    applied: str = aggregation
    if kind == "histogram":
        rows = await histogram_steps(rt.warehouse, scope, query)
        applied = "merged_buckets"
    elif kind == "sum":
        applied = _applied(await sum_modes(rt.warehouse, scope, query))
        rows = (await gauge_steps(rt.warehouse, scope, query, "sum", aggregation) if applied == "last"
                else await sum_steps(rt.warehouse, scope, query))
        applied = aggregation if applied == "last" else applied
    else:
        rows = await gauge_steps(rt.warehouse, scope, query, "gauge", aggregation)
    truncated = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    shape = histogram_series if kind == "histogram" else value_series
    exemplars = await series_exemplars(rt.warehouse, scope, query, rt.limits.max_lookup_exemplars)
    links = await best_links(rt.warehouse, scope, [r["TraceId"] for r in exemplars if r["TraceId"]])
    return JsonResponse({
        "metric_name": metric, "kind": kind, "unit": unit, "applied": applied,
        "time_range": {"start": iso_ns(time.start_ns), "end": iso_ns(time.end_ns)}, "step_s": query.step_s,
        "group_by": list(query.group_by), "filter": query.filters, "truncated": truncated,
        "series": shape(rows, query.group_by, time.start_ns, query.step_ns),
        "exemplars": [exemplar_json(row, shown_id(row, links)) for row in exemplars],
    })


ROUTES = [
    # After the exemplar routes in the app's list: this path would match theirs too.
    Route("/api/v1/metrics/{metric_name:path}", metric_series, methods=["GET"]),
]
