"""POST /api/v1/rca/enhanced: an analysis, then its explanation (api/llm/explain.py).

The analysis is injected: ``enhanced_routes(analyze)`` builds the route around any async
callable that answers a request body with findings (a mapping with ``root_cause``)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.llm.explain import explain
from api.responses import JsonResponse
from api.routes.nlq import json_body, llm_client

# (request, body) -> findings. It raises ParamError / NotFoundError like any route would.
Analyze = Callable[[Request, dict[str, Any]], Awaitable[Mapping[str, Any]]]
ENHANCED_FIELDS = frozenset({"correlation_id", "trace_id", "start", "end", "service", "alert_fingerprint"})


def enhanced_routes(analyze: Analyze, fields: frozenset[str] = ENHANCED_FIELDS) -> list[Route]:
    """The /api/v1/rca/enhanced route (alias /api/v1/ai/rca/enhanced) over ``analyze``.

    Answers the findings with an ``explanation`` added; the explanation never fails the
    request (no model, or a failing one: explained_by "rules")."""

    async def enhanced(request: Request) -> Response:
        body = await json_body(request, fields)
        findings = await analyze(request, body)
        return JsonResponse({**findings, "explanation": await explain(findings, llm_client(request))})

    return [Route("/api/v1/rca/enhanced", enhanced, methods=["POST"]),
            Route("/api/v1/ai/rca/enhanced", enhanced, methods=["POST"])]
