"""API keys and tenants: with keys configured, every data request names a key and sees its
tenant's rows (an admin key: every tenant's, the operator's view)."""
from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.responses import error_response
from api.ui import is_ui_path
from core.credentials import ApiKey, Role, TokenTable, presented_token

# Probes, scrapes, the API description and the web UI's pages and files hold no tenant data:
# they work without a key (a UI page asks for one and sends it with its /api/ requests).
# Every other path needs a key, so a route added later is keyed unless it is named here.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or is_ui_path(path)


class TenantAuth:
    """ASGI middleware: puts ``tenant`` (None: every tenant, when auth is off or the key is
    an admin's) into the request state, or answers 401 when keys are configured and the
    request has no valid one."""

    def __init__(self, app: ASGIApp, keys: Iterable[ApiKey]) -> None:
        self.app = app
        self.keys: TokenTable[tuple[str, Role]] = TokenTable((k.token, (k.tenant, k.role)) for k in keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["tenant"], state["role"] = None, "admin"
        if self.keys.enabled and not is_open(scope["path"]):
            presented = presented_token(Headers(scope=scope))
            grant = self.keys.grant_for(presented) if presented else None
            if grant is None:
                response = error_response(
                    401, "unauthorized",
                    "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
                response.headers["WWW-Authenticate"] = 'Bearer realm="ollystack"'
                await response(scope, receive, send)
                return
            tenant, role = grant
            state["tenant"], state["role"] = (None if role == "admin" else tenant), role
        await self.app(scope, receive, send)
