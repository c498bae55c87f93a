"""/api/v1/traces: one trace as a span tree, and trace search."""
from __future__ import annotations

from collections import defaultdict

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.conditions import parse_conditions
from api.presentation.rows import is_error_span, iso_ns, ms, span_json
from api.queries.correlation import best_links
from api.queries.traces import (
    STATUS_CODES,
    TraceFilter,
    search_traces,
    trace_own_ids,
    trace_spans,
)
from api.responses import JsonResponse, NotFoundError
from api.runtime import runtime
from core.types import Row

SEARCH_PARAMS = frozenset({"service", "operation", "status", "min_duration_ms", "max_duration_ms", "tags",
                           "start", "end", "limit", "offset"})
STATUSES = {name: name for name in STATUS_CODES}


def span_tree(spans: list[Row]) -> list[tuple[Row, int, int]]:
    """Spans depth-first from each root (a span whose parent is not in the trace), children
    in time order: (span, depth, child count). Flat, so deep traces stay serialisable."""
    ids = {s["SpanId"] for s in spans}
    children: dict[str, list[Row]] = defaultdict(list)
    roots = []
    for span in spans:  # already in time order
        parent = span["ParentSpanId"]
        if parent and parent in ids and parent != span["SpanId"]:
            children[parent].append(span)
        else:
            roots.append(span)
    out: list[tuple[Row, int, int]] = []
    seen: set[str] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span["SpanId"] in seen:  # a parent cycle in bad data
            continue
        seen.add(span["SpanId"])
        kids = children.get(span["SpanId"], [])
        out.append((span, depth, len(kids)))
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return out


async def get_trace(request: Request) -> Response:
    """The trace's spans as a tree, with the trace's correlation ID."""
    p.query_params(request, frozenset())
    trace_id = p.trace_id(request.path_params["trace_id"])
    rt = runtime(request)
    scope = rt.scope(request)
    spans = await trace_spans(rt.warehouse, scope, trace_id, rt.limits.max_lookup_spans + 1)
    if not spans:
        raise NotFoundError(f"no spans are stored for trace {trace_id}")
    truncated = len(spans) > rt.limits.max_lookup_spans
    spans = spans[: rt.limits.max_lookup_spans]
    links = await best_links(rt.warehouse, scope, [trace_id])
    cid = links.get(trace_id) or next(iter(await trace_own_ids(rt.warehouse, scope, trace_id)), "")
    start = min(int(s["ts_ns"]) for s in spans)
    end = max(int(s["ts_ns"]) + int(s["Duration"]) for s in spans)
    tree = [{**span_json(span, cid or span["CorrelationId"]), "depth": depth, "child_count": kids}
            for span, depth, kids in span_tree(spans)]
    return JsonResponse({
        "trace_id": trace_id,
        "correlation_id": cid,
        "start": iso_ns(start),
        "duration_ms": ms(end - start),
        "span_count": len(spans),
        "error_count": sum(1 for s in spans if is_error_span(s)),
        "services": sorted({s["ServiceName"] for s in spans}),
        "truncated": truncated,
        "spans": tree,
    })


async def list_traces(request: Request) -> Response:
    """Traces with a span matching every filter (``tags``: attribute conditions), newest first."""
    q = p.query_params(request, SEARCH_PARAMS)
    rt = runtime(request)
    time = p.time_range(q, rt.limits, rt.clock_ns())
    flt = TraceFilter(
        time=time,
        service=p.name_value(q["service"], "service") if "service" in q else None,
        operation=p.text_value(q["operation"], "operation") if "operation" in q else None,
        status=p.choice(q["status"], "status", STATUSES) if "status" in q else None,
        min_duration_ns=p.duration_ns(q, "min_duration_ms"),
        max_duration_ns=p.duration_ns(q, "max_duration_ms"),
        conditions=parse_conditions(q["tags"], "tags", "span") if "tags" in q else (),
    )
    if flt.min_duration_ns is not None and flt.max_duration_ns is not None \
            and flt.min_duration_ns > flt.max_duration_ns:
        raise p.ParamError("min_duration_ms", "must not be above max_duration_ms")
    page = p.page(q, rt.limits)
    scope = rt.scope(request)
    found = await search_traces(rt.warehouse, scope, flt, page)
    more = len(found) > page.limit
    found = found[: page.limit]
    links = await best_links(rt.warehouse, scope, [row["TraceId"] for row in found])
    traces = [{
        "trace_id": row["TraceId"],
        "correlation_id": links.get(row["TraceId"]) or row["own_correlation_id"],
        "root_service": row["root_service"],
        "root_operation": row["root_operation"],
        "start": iso_ns(row["start_ns"]),
        "duration_ms": ms(int(row["end_ns"]) - int(row["start_ns"])),
        "span_count": int(row["spans"]),
        "error_count": int(row["errors"]),
        "services": row["services"],
    } for row in found]
    return JsonResponse({
        "traces": traces,
        "time_range": {"start": iso_ns(time.start_ns), "end": iso_ns(time.end_ns)},
        "limit": page.limit, "offset": page.offset,
        "next_offset": page.offset + page.limit if more else None,
    })


ROUTES = [
    Route("/api/v1/traces", list_traces, methods=["GET"]),
    Route("/api/v1/traces/{trace_id:path}", get_trace, methods=["GET"]),
]
