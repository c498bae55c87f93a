"""/api/v1/services and /api/v1/service-map: request statistics and calls between services."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.presentation.rows import iso_ns, ms
from api.queries.services import service_edges, service_stats
from api.responses import JsonResponse
from api.runtime import runtime

WINDOW_PARAMS = frozenset({"start", "end", "limit"})


def _quantiles_ms(values: Sequence[Any]) -> dict[str, float | None]:
    found = [None if v is None else ms(v) for v in values] if len(values) == 3 else [None] * 3
    return {"p50_ms": found[0], "p95_ms": found[1], "p99_ms": found[2]}


def _window(request: Request) -> tuple[p.TimeRange, int, dict[str, str]]:
    q = p.query_params(request, WINDOW_PARAMS)
    rt = runtime(request)
    time = p.time_range(q, rt.limits, rt.clock_ns())
    return time, p.page(q, rt.limits).limit, {"start": iso_ns(time.start_ns), "end": iso_ns(time.end_ns)}


async def list_services(request: Request) -> Response:
    """Per service over the window (default: the last hour): requests (root, server and
    consumer spans), their errors, error rate and latency percentiles."""
    time, limit, window = _window(request)
    rt = runtime(request)
    rows = await service_stats(rt.warehouse, rt.scope(request), time, limit)
    services = [{
        "service": row["service"],
        "requests": int(row["requests"]),
        "errors": int(row["errors"]),
        "error_rate": round(int(row["errors"]) / int(row["requests"]), 6) if int(row["requests"]) else 0.0,
        **_quantiles_ms(row["quantiles_ns"]),
        "spans": int(row["spans"]),
        "error_spans": int(row["error_spans"]),
    } for row in rows]
    return JsonResponse({"time_range": window, "services": services})


async def service_map(request: Request) -> Response:
    """Edges caller -> callee over the window: child spans in another service than their
    parent's, and databases or peers named by client spans; every node with its kind."""
    time, limit, window = _window(request)
    rt = runtime(request)
    rows = await service_edges(rt.warehouse, rt.scope(request), time, limit)
    edges = [{
        "caller": row["caller"],
        "callee": row["callee"],
        "callee_kind": row["callee_kind"],
        "calls": int(row["calls"]),
        "errors": int(row["errors"]),
        "error_rate": round(int(row["errors"]) / int(row["calls"]), 6) if int(row["calls"]) else 0.0,
        **_quantiles_ms(row["quantiles_ns"]),
    } for row in rows]
    nodes = {(e["caller"], "service") for e in edges} | {(e["callee"], e["callee_kind"]) for e in edges}
    return JsonResponse({"time_range": window, "nodes": [{"service": n, "kind": k} for n, k in sorted(nodes)],
                         "edges": edges})


ROUTES = [
    Route("/api/v1/services", list_services, methods=["GET"]),
    Route("/api/v1/service-map", service_map, methods=["GET"]),
]
