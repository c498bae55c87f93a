"""Liveness, readiness, Prometheus metrics and the OpenAPI document."""
from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.openapi import openapi_document
from api.responses import JsonResponse
from api.runtime import runtime
from core.errors import WarehouseError
from core.exposition import metrics_response
from schemas.tables import (
    CORRELATION_INDEX_TABLE,
    EXEMPLARS_TABLE,
    LOGS_TABLE,
    TRACE_LINKS_TABLE,
    TRACES_TABLE,
)

REQUIRED_TABLES = (TRACES_TABLE, LOGS_TABLE, TRACE_LINKS_TABLE, CORRELATION_INDEX_TABLE, EXEMPLARS_TABLE)


async def healthz(request: Request) -> Response:
    """The process answers."""
    return JsonResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The warehouse answers and holds the tables the API reads (migrations applied)."""
    rt = runtime(request)
    try:
        rows = await asyncio.to_thread(
            rt.warehouse.query,
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": rt.warehouse.database})
    except WarehouseError as exc:
        response = JsonResponse({"status": "unavailable", "reason": str(exc)[:500]}, status_code=503)
        response.headers["Retry-After"] = "5"
        return response
    missing = sorted(set(REQUIRED_TABLES) - {row["name"] for row in rows})
    if missing:
        return JsonResponse({"status": "unavailable", "reason": f"tables missing (run migrations): {missing}"},
                            status_code=503, headers={"Retry-After": "5"})
    return JsonResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    return metrics_response(runtime(request).metrics.registry, request)


async def openapi(request: Request) -> Response:
    return JsonResponse(openapi_document())


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
]
