"""Ingest tokens and API keys: their settings form, and finding the one a request presents.

The gateway (who may write, as which tenant) and the query API (who may read which
tenant) read credentials the same way: ``Authorization: Bearer <token>``, else
``X-API-Key: <token>``, compared in constant time against every configured one."""
from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
# Tenants end up in resource attributes, alert labels and metric labels: a plain charset.
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
_TENANT = re.compile(TENANT_PATTERN)
_BEARER = "bearer "
T = TypeVar("T")


class IngestToken(BaseModel):
    """A token that lets an OTLP client write, stamping its data with ``tenant``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr
    tenant: str = Field(pattern=TENANT_PATTERN)


class ApiKey(BaseModel):
    """A key that lets a client read ``tenant``'s data from the query API.

    ``viewer`` reads; ``admin`` also runs the analysis operations (POST routes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr
    tenant: str = Field(pattern=TENANT_PATTERN)
    role: Role = "viewer"


def _pairs(value: Any) -> list[tuple[str, str]] | Any:
    """``"tok=acme,tok2=globex"``, a list of such strings, or a {token: tenant} table as
    (token, rest) pairs; anything else is returned for pydantic to refuse."""
    if isinstance(value, Mapping):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        out = []
        for item in value:
            token, sep, rest = item.strip().partition("=")
            if not sep or not token.strip() or not rest.strip():
                # The item itself is not shown: it may be a token.
                raise ValueError("expected token=tenant items separated by commas")
            out.append((token.strip(), rest.strip()))
        return out
    return value


def _unique(tokens: Iterable[str]) -> None:
    seen: set[str] = set()
    for token in tokens:
        if token in seen:
            raise ValueError("the same token is given twice")
        seen.add(token)


def parse_ingest_tokens(value: Any) -> Any:
    """The settings value of otlp.auth_tokens: ``token=tenant`` items (see _pairs)."""
    pairs = _pairs(value)
    if not isinstance(pairs, list):
        return pairs
    _unique(token for token, _ in pairs)
    for _, tenant in pairs:
        if not _TENANT.match(tenant):
            raise ValueError(f"tenant {tenant[:64]!r} is not 1-64 characters of [A-Za-z0-9._-]")
    return [{"token": token, "tenant": tenant} for token, tenant in pairs]


def parse_api_keys(value: Any) -> Any:
    """The settings value of api.keys: ``key=tenant`` or ``key=tenant:role`` items."""
    pairs = _pairs(value)
    if not isinstance(pairs, list):
        return pairs
    _unique(token for token, _ in pairs)
    out = []
    for token, rest in pairs:
        tenant, sep, role = rest.rpartition(":")
        if not sep:
            tenant, role = rest, "viewer"
        if role not in ROLES:
            raise ValueError(f"role {role[:16]!r} is not one of {', '.join(ROLES)}")
        if not _TENANT.match(tenant):
            raise ValueError(f"tenant {tenant[:64]!r} is not 1-64 characters of [A-Za-z0-9._-]")
        out.append({"token": token, "tenant": tenant, "role": role})
    return out


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of ``X-API-Key`` (header names
    lowercase, as gRPC metadata and Starlette's headers give them)."""
    auth = headers.get("authorization", "")
    if auth[: len(_BEARER)].lower() == _BEARER and auth[len(_BEARER):].strip():
        return auth[len(_BEARER):].strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


class TokenTable(Generic[T]):
    """Configured secrets and what each grants; a lookup compares with every one of them
    in constant time, so timing reveals neither a prefix nor which token matched."""

    def __init__(self, entries: Iterable[tuple[SecretStr, T]]) -> None:
        self._entries = [(secret.get_secret_value().encode(), grant) for secret, grant in entries]

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def grant_for(self, presented: str) -> T | None:
        """What ``presented`` grants, or None when it is no configured token."""
        candidate = presented.encode()
        found: T | None = None
        for token, grant in self._entries:
            if hmac.compare_digest(candidate, token) and found is None:
                found = grant
        return found
