"""What route handlers share: the warehouse, limits, the correlation cache and metrics."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from agents.score.config import ScoreConfig
from api.cache import TtlCache
from api.params import Limits
from api.queries.correlation import CorrelationRows, load_correlation
from api.queries.scope import QueryScope
from api.telemetry import ApiMetrics
from sinks.warehouse import Warehouse


@dataclass
class ApiRuntime:
    warehouse: Warehouse
    metrics: ApiMetrics
    limits: Limits = field(default_factory=Limits)
    cache: TtlCache[CorrelationRows] = field(default_factory=TtlCache)
    clock_ns: Callable[[], int] = time.time_ns
    score: ScoreConfig = field(default_factory=ScoreConfig)  # windows and thresholds the alerts and RCA read

    def scope(self, request: Request) -> QueryScope:
        """The query scope of ``request``: this database, and the tenant its key maps to."""
        return QueryScope(self.warehouse.database, request.scope.get("state", {}).get("tenant"))

    async def correlation(self, scope: QueryScope, cid: str) -> CorrelationRows:
        """The rows of ``cid`` in ``scope``, from the cache when a recent lookup has them.

        Empty results are not cached: the ID may be about to arrive."""
        key = (scope.database, scope.tenant, cid)
        cached = self.cache.get(key)
        if cached is not None:
            self.metrics.cache.labels("hit").inc()
            return cached
        self.metrics.cache.labels("miss").inc()
        rows = await load_correlation(self.warehouse, scope, cid, self.limits)
        if not rows.empty:
            self.cache.put(key, rows, rows=rows.size_rows)
        return rows


def runtime(request: Request) -> ApiRuntime:
    found: ApiRuntime = request.app.state.runtime
    return found
