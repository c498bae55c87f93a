"""The query API's own Prometheus metrics and the middleware that records them."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    """Requests by route template and status, their latency, and correlation-cache results."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter("ollystack_api_requests", "API requests served",
                                ["route", "status"], registry=registry)
        self.latency_s = Histogram("ollystack_api_request_duration_seconds", "API request latency",
                                   ["route"], registry=registry,
                                   buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.cache = Counter("ollystack_api_correlation_cache", "correlation lookups by cache result",
                             ["result"], registry=registry)


class MetricsMiddleware:
    """Counts every HTTP request under its route template (never the raw path, whose
    cardinality a client controls)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency_s.labels(route).observe(time.perf_counter() - started)
