"""Bearer tokens and API keys to tenants; the tenant is written into the data."""
from __future__ import annotations

import hmac
from collections.abc import Mapping

from pipeline.gateway.errors import UnauthenticatedError

_BEARER = "bearer "


def _presented_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of ``x-api-key``."""
    auth = headers.get("authorization", "")
    if auth[: len(_BEARER)].lower() == _BEARER:
        return auth[len(_BEARER):].strip() or None
    key = headers.get("x-api-key", "").strip()
    return key or None


class Authenticator:
    """Maps request headers (names lowercase) to a tenant, or to None when auth is off."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = [(token.encode(), tenant) for token, tenant in tokens.items()]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def tenant_for(self, headers: Mapping[str, str]) -> str | None:
        """The tenant of the request's token; None when auth is off.

        Raises UnauthenticatedError when auth is on and the token is missing or unknown."""
        if not self._tokens:
            return None
        presented = _presented_token(headers)
        if presented is None:
            raise UnauthenticatedError(
                "missing credentials: send 'Authorization: Bearer <token>' or 'x-api-key: <token>'")
        candidate = presented.encode()
        found = None
        # Compare with every token in constant time, so timing does not reveal a prefix.
        for token, tenant in self._tokens:
            if hmac.compare_digest(candidate, token) and found is None:
                found = tenant
        if found is None:
            raise UnauthenticatedError("unknown token")
        return found
