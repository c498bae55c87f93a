"""The worker's own HTTP port (``worker.metrics_port``): /metrics for Prometheus and /healthz."""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.exposition import metrics_response
from core.http_server import EmbeddedServer


def worker_endpoint_app(registry: CollectorRegistry, healthy: Callable[[], bool]) -> Starlette:
    """/metrics: the worker's registry; /healthz: 200 while ``healthy()``, else 503."""

    async def metrics(request: Request) -> Response:
        return metrics_response(registry, request)

    async def healthz(request: Request) -> Response:
        ok = healthy()
        return JSONResponse({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"]),
                             Route("/healthz", healthz, methods=["GET"])])


def worker_endpoint(registry: CollectorRegistry, healthy: Callable[[], bool], host: str,
                    port: int) -> EmbeddedServer:
    """The endpoint as a server of this loop; ``start()`` raises ListenError naming
    worker.metrics_port when the port cannot be bound."""
    return EmbeddedServer(worker_endpoint_app(registry, healthy), host, port, "worker.metrics_port")
