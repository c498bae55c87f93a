"""create_app(): routes, middleware and error handlers of the query API in one place."""
from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.errors import WarehouseError
from pipeline.settings import Settings
from sinks.warehouse import Warehouse


def create_app(settings: Settings, warehouse: Warehouse, registry: CollectorRegistry | None = None) -> Starlette:
    """The API app over ``warehouse``; its Prometheus metrics go to ``registry``."""
    registry = registry or CollectorRegistry()
    requests = Counter("ollystack_api_requests", "API requests served", ["route", "status"], registry=registry)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await asyncio.to_thread(warehouse.query, "SELECT 1 AS ok")
        except WarehouseError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(routes=[
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ])

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    app.state.settings = settings
    app.state.warehouse = warehouse
    return app
