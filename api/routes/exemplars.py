"""Metric exemplars, and from an exemplar's trace to its correlation lookup."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from agents.validation import validate_correlation_id
from api import params as p
from api.presentation.rows import exemplar_json, iso_ns, shown_id
from api.queries.correlation import best_links
from api.queries.exemplars import exemplar_own_ids, metric_exemplars
from api.queries.traces import trace_own_ids, trace_spans
from api.responses import JsonResponse, NotFoundError
from api.runtime import runtime

EXEMPLAR_PARAMS = frozenset({"service", "start", "end", "limit", "offset"})


async def list_exemplars(request: Request) -> Response:
    """Exemplars of one metric in the time range (default: the last hour), newest first."""
    q = p.query_params(request, EXEMPLAR_PARAMS)
    metric = p.name_value(request.path_params["metric_name"], "metric_name")
    rt = runtime(request)
    time = p.time_range(q, rt.limits, rt.clock_ns())
    service = p.name_value(q["service"], "service") if "service" in q else None
    page = p.page(q, rt.limits)
    scope = rt.scope(request)
    rows = await metric_exemplars(rt.warehouse, scope, metric, time, service, page)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    links = await best_links(rt.warehouse, scope, [r["TraceId"] for r in rows if r["TraceId"]])
    return JsonResponse({
        "metric_name": metric,
        "exemplars": [exemplar_json(row, shown_id(row, links)) for row in rows],
        "time_range": {"start": iso_ns(time.start_ns), "end": iso_ns(time.end_ns)},
        "limit": page.limit, "offset": page.offset,
        "next_offset": page.offset + page.limit if more else None,
    })


async def exemplar_trace(request: Request) -> Response:
    """307 to the correlation lookup of the trace's correlation ID, or to the trace itself
    when it has none; 404 when nothing of the trace is visible."""
    p.query_params(request, frozenset())
    trace_id = p.trace_id(request.path_params["trace_id"])
    rt = runtime(request)
    scope = rt.scope(request)
    own = await trace_own_ids(rt.warehouse, scope, trace_id)
    has_spans = bool(await trace_spans(rt.warehouse, scope, trace_id, 1))
    if scope.tenant is not None and not (own or has_spans):
        raise NotFoundError(f"nothing is stored for trace {trace_id}")
    links = await best_links(rt.warehouse, scope, [trace_id])
    candidates = [links[trace_id]] if trace_id in links else []
    candidates += own + await exemplar_own_ids(rt.warehouse, scope, trace_id)
    for cid in candidates:
        if validate_correlation_id(cid).ok:
            return RedirectResponse(f"/api/v1/correlate/{quote(cid, safe='')}", status_code=307)
    if has_spans:
        return RedirectResponse(f"/api/v1/traces/{trace_id}", status_code=307)
    raise NotFoundError(f"no correlation ID and no spans are stored for trace {trace_id}")


ROUTES = [
    Route("/api/v1/metrics/{metric_name:path}/exemplars", list_exemplars, methods=["GET"]),
    Route("/api/v1/exemplars/{trace_id:path}/trace", exemplar_trace, methods=["GET"]),
]
