"""/api/v1/logs: log records by correlation ID, trace ID, service, severity, attributes, body words, text
and time range."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.conditions import parse_conditions
from api.presentation.rows import iso_ns, log_json, shown_id
from api.queries.correlation import best_links, resolve_traces
from api.queries.logs import SEVERITIES, LogFilter, search_logs
from api.responses import JsonResponse
from api.runtime import runtime
from core.types import Row

LOG_PARAMS = frozenset({"correlation_id", "trace_id", "service", "severity", "text", "tokens", "tags",
                        "start", "end", "limit", "offset", "order"})
SEVERITY_NAMES = {name: name for name in SEVERITIES} | {"warning": "warn"}
ORDERS = {"asc": "asc", "desc": "desc"}


async def list_logs(request: Request) -> Response:
    """Newest first unless ``order=asc``. With a correlation or trace ID the time range is
    optional (no bound unless start or end is given); without one it defaults to the last hour."""
    q = p.query_params(request, LOG_PARAMS)
    rt = runtime(request)
    cid = p.correlation_id(q["correlation_id"]) if "correlation_id" in q else None
    trace = p.trace_id(q["trace_id"]) if "trace_id" in q else None
    by_id = cid is not None or trace is not None
    time = (p.optional_time_range if by_id else p.time_range)(q, rt.limits, rt.clock_ns())
    service = p.name_value(q["service"], "service") if "service" in q else None
    severity = p.choice(q["severity"], "severity", SEVERITY_NAMES) if "severity" in q else None
    text = p.text_value(q["text"], "text") if "text" in q else None
    tokens = p.body_tokens(q["tokens"], "tokens") if "tokens" in q else ()
    conditions = parse_conditions(q["tags"], "tags", "log") if "tags" in q else ()
    order = p.choice(q["order"], "order", ORDERS) if "order" in q else "desc"
    page = p.page(q, rt.limits)
    scope = rt.scope(request)

    trace_ids: tuple[str, ...] | None = (trace,) if trace is not None else None
    if cid is not None:
        linked = await resolve_traces(rt.warehouse, scope, cid, rt.limits.max_lookup_traces)
        trace_ids = tuple(t for t in linked if trace is None or t == trace)
    flt = LogFilter(time=time, trace_ids=trace_ids, correlation_id=cid if trace is None else None,
                    service=service, severity=severity, text=text, tokens=tokens, conditions=conditions,
                    order="asc" if order == "asc" else "desc")
    rows: list[Row] = []
    if trace_ids != () or flt.correlation_id is not None:
        rows = await search_logs(rt.warehouse, scope, flt, page)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    links = {} if cid is not None else await best_links(
        rt.warehouse, scope, [r["TraceId"] for r in rows if r["TraceId"]])
    return JsonResponse({
        "logs": [log_json(row, shown_id(row, links, cid)) for row in rows],
        "time_range": None if time is None else {"start": iso_ns(time.start_ns), "end": iso_ns(time.end_ns)},
        "limit": page.limit, "offset": page.offset,
        "next_offset": page.offset + page.limit if more else None,
    })


ROUTES = [Route("/api/v1/logs", list_logs, methods=["GET"])]
