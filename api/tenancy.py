"""API keys and tenants: with keys configured, every data request names a key and sees one tenant."""
from __future__ import annotations

import hmac
from typing import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.responses import error_response

# Probes, scrapes and the API description work without a key: they hold no tenant data.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


def tenant_for_key(tokens: Mapping[str, str], key: str) -> str | None:
    """The tenant of API key ``key``, or None. Compares every key in constant time."""
    found = None
    given = key.encode()
    for token, tenant in tokens.items():
        if hmac.compare_digest(token.encode(), given):
            found = tenant
    return found


def presented_key(request: Request) -> str | None:
    """The key of ``Authorization: Bearer <key>``, else of ``X-API-Key``."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


class TenantAuth:
    """ASGI middleware: puts ``tenant`` (None when auth is off) into the request state, or
    answers 401 when keys are configured and the request has no valid one."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, str]) -> None:
        self.app = app
        self.tokens = dict(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["tenant"] = None
        if self.tokens and scope["path"] not in OPEN_PATHS:
            key = presented_key(Request(scope))
            tenant = tenant_for_key(self.tokens, key) if key else None
            if tenant is None:
                response = error_response(
                    401, "unauthorized",
                    "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
                response.headers["WWW-Authenticate"] = 'Bearer realm="ollystack"'
                await response(scope, receive, send)
                return
            scope["state"]["tenant"] = tenant
        await self.app(scope, receive, send)
