"""/api/v1/correlate/{correlation_id}: the full context of one correlation ID, its timeline and impact."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.presentation.context import build_context, build_impact, build_timeline
from api.queries.correlation import CorrelationRows
from api.responses import JsonResponse, NotFoundError
from api.runtime import runtime

NO_PARAMS: frozenset[str] = frozenset()


async def _rows(request: Request) -> CorrelationRows:
    p.query_params(request, NO_PARAMS)
    cid = p.correlation_id(request.path_params["correlation_id"])
    rt = runtime(request)
    rows = await rt.correlation(rt.scope(request), cid)
    if rows.empty:
        raise NotFoundError(f"no spans, logs or metrics are stored under correlation ID {cid!r}")
    return rows


async def correlate(request: Request) -> Response:
    """Summary, traces, logs, metrics, services, errors, time range and timeline."""
    return JsonResponse(build_context(await _rows(request)))


async def timeline(request: Request) -> Response:
    rows = await _rows(request)
    return JsonResponse({"correlation_id": rows.correlation_id, "truncated": rows.truncated,
                         "timeline": build_timeline(rows)})


async def impact(request: Request) -> Response:
    rows = await _rows(request)
    return JsonResponse({**build_impact(rows), "truncated": rows.truncated})


# IDs may contain '/', so the ID is a path converter; the longer routes come first. An ID
# that itself ends in "/timeline" or "/impact" reaches those views of the shorter ID.
ROUTES = [
    Route("/api/v1/correlate/{correlation_id:path}/timeline", timeline, methods=["GET"]),
    Route("/api/v1/correlate/{correlation_id:path}/impact", impact, methods=["GET"]),
    Route("/api/v1/correlate/{correlation_id:path}", correlate, methods=["GET"]),
]
