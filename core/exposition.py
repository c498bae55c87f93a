"""A Prometheus registry as an HTTP answer, in the format the scraper asks for.

Prometheus asks for OpenMetrics when exemplar storage is on; only that format carries
exemplars (the correlation IDs that link a metric to the Correlation Explorer), so the
Accept header decides, as prometheus_client's own HTTP handler does."""
from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response


def metrics_response(registry: CollectorRegistry, request: Request) -> Response:
    """``registry`` in the Prometheus text format, or OpenMetrics when Accept asks for it."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry), media_type=content_type)
