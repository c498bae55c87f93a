"""Ingest tokens to tenants; the tenant is written into the data (resource attribute tenant.id)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.credentials import IngestToken, TokenTable, presented_token
from pipeline.gateway.errors import UnauthenticatedError


class Authenticator:
    """Maps request headers (names lowercase) to a tenant, or to None when auth is off."""

    def __init__(self, tokens: Iterable[IngestToken]) -> None:
        self._tokens = TokenTable((t.token, t.tenant) for t in tokens)

    @property
    def enabled(self) -> bool:
        return self._tokens.enabled

    def tenant_for(self, headers: Mapping[str, str]) -> str | None:
        """The tenant of the request's token; None when auth is off.

        Raises UnauthenticatedError when auth is on and the token is missing or unknown."""
        if not self._tokens.enabled:
            return None
        presented = presented_token(headers)
        if presented is None:
            raise UnauthenticatedError(
                "missing credentials: send 'Authorization: Bearer <token>' or 'x-api-key: <token>'")
        tenant = self._tokens.grant_for(presented)
        if tenant is None:
            raise UnauthenticatedError("unknown token")
        return tenant
