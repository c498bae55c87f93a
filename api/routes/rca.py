"""/api/v1/analyze and /api/v1/rca (and their /api/v1/ai/ aliases): root-cause analysis of
one request (``correlation_id`` or ``trace_id``) or of an incident (a time window or an
alert); /api/v1/rca/enhanced adds an explanation; /api/v1/causal/analyze gives the causal
chain. The analyses themselves are in api/rca/analyses.py."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.bodies import json_object
from api.rca.analyses import CAUSAL_FIELDS, RCA_FIELDS, REQUEST_FIELDS, AnalysisContext, causal_findings, findings
from api.responses import JsonResponse
from api.routes.explain import enhanced_routes
from api.runtime import runtime

ANALYSIS_FIELDS = REQUEST_FIELDS | RCA_FIELDS


def analysis_context(request: Request) -> AnalysisContext:
    """The analyses' view of ``request``: its tenant scope and the API's runtime."""
    rt = runtime(request)
    return AnalysisContext(rt.warehouse, rt.scope(request), rt.limits, rt.clock_ns(), rt.score, rt.correlation)


async def analysis(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The request or incident findings of ``body`` (the enhanced route explains them)."""
    return await findings(analysis_context(request), body)


async def analyze(request: Request) -> Response:
    p.query_params(request, frozenset())
    return JsonResponse(await analysis(request, await json_object(request, ANALYSIS_FIELDS)))


async def causal_analyze(request: Request) -> Response:
    p.query_params(request, frozenset())
    body = await json_object(request, CAUSAL_FIELDS)
    return JsonResponse(await causal_findings(analysis_context(request), body))


PATHS = ("/api/v1/analyze", "/api/v1/rca", "/api/v1/ai/analyze", "/api/v1/ai/rca")
ROUTES = [*(Route(path, analyze, methods=["POST"]) for path in PATHS),
          Route("/api/v1/causal/analyze", causal_analyze, methods=["POST"]),
          *enhanced_routes(analysis, ANALYSIS_FIELDS)]
