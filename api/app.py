"""create_app(): routes, middleware and error handlers of the query API in one place."""
from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware

from agents.score.config import ScoreConfig
from api.cache import TtlCache
from api.llm.client import client_from_settings
from api.nlq.chat import default_tools
from api.params import Limits
from api.queries.correlation import CorrelationRows
from api.responses import EXCEPTION_HANDLERS
from api.routes import (
    alerts,
    correlate,
    correlations,
    exemplars,
    health,
    logs,
    metric_series,
    nlq,
    rca,
    services,
    traces,
)
from api.runtime import ApiRuntime
from api.telemetry import ApiMetrics, MetricsMiddleware
from api.tenancy import TenantAuth
from api.ui import ui_routes
from core.errors import ConfigError
from core.settings import Settings
from sinks.warehouse import Warehouse

CACHE_TTL_S = 10.0
CACHE_MAX_ENTRIES = 256
CACHE_MAX_ROWS = 200_000


def create_app(
    settings: Settings,
    warehouse: Warehouse,
    registry: CollectorRegistry | None = None,
    *,
    limits: Limits | None = None,
    cache_ttl_s: float = CACHE_TTL_S,
    clock_ns: Callable[[], int] = time.time_ns,
) -> Starlette:
    """The API app over ``warehouse``; its Prometheus metrics go to ``registry``.

    Auth is on when settings.api.keys is non-empty: then every /api/v1 request needs a
    key and sees only its tenant's rows (an admin key sees every tenant's). Ingest tokens
    (otlp.auth_tokens) never read. ``cache_ttl_s`` = 0 turns the correlation cache off;
    ``clock_ns`` is "now" for default time ranges.

    Raises ConfigError when ingest auth is on and the API has no keys: the data of every
    tenant would be open to anyone who can reach the port."""
    if settings.otlp.auth_tokens and not settings.api.keys:
        raise ConfigError("api.keys: ingest auth is on (otlp.auth_tokens) but the query API has no keys, so "
                          "every tenant's data would be open: set OLLYSTACK_API_KEYS (key=tenant[:admin],...)")
    metrics = ApiMetrics(registry or CollectorRegistry())
    runtime = ApiRuntime(
        warehouse=warehouse,
        metrics=metrics,
        limits=limits or Limits(),
        cache=TtlCache[CorrelationRows](ttl_s=cache_ttl_s, max_entries=CACHE_MAX_ENTRIES,
                                        max_rows=CACHE_MAX_ROWS),
        clock_ns=clock_ns,
        score=ScoreConfig.from_settings(settings),
    )
    app = Starlette(
        routes=[*health.ROUTES, *correlate.ROUTES, *traces.ROUTES, *logs.ROUTES, *services.ROUTES,
                *exemplars.ROUTES, *metric_series.ROUTES, *alerts.ROUTES, *correlations.ROUTES,
                *rca.ROUTES, *nlq.ROUTES, *ui_routes(auth_required=bool(settings.api.keys))],
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(TenantAuth, keys=settings.api.keys),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    app.state.warehouse = warehouse
    app.state.runtime = runtime
    # The language model (None: not configured) and the chat assistant's tools, which
    # other analyses extend with app.state.chat_tools.register(...).
    app.state.llm = client_from_settings(settings.llm)
    app.state.chat_tools = default_tools()
    return app
