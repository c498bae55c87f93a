"""API keys: where a key is read from, and key -> tenant in constant time."""
from __future__ import annotations

import pytest
from starlette.requests import Request

from api.tenancy import presented_key, tenant_for_key

TOKENS = {"key-acme": "acme", "key-globex": "globex"}


def request_with(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


@pytest.mark.parametrize("headers, key", [
    ({"Authorization": "Bearer key-acme"}, "key-acme"),
    ({"Authorization": "bearer   key-acme "}, "key-acme"),
    ({"X-API-Key": "key-acme"}, "key-acme"),
    ({"Authorization": "Basic abc", "X-API-Key": "key-acme"}, "key-acme"),
    ({"Authorization": "Bearer key-acme", "X-API-Key": "key-globex"}, "key-acme"),
    ({"Authorization": "key-acme"}, None),
    ({"Authorization": "Bearer "}, None),
    ({}, None),
], ids=["bearer", "bearer-lowercase-spaces", "x-api-key", "basic-falls-back", "bearer-wins", "no-scheme",
        "empty-bearer", "none"])
def test_the_presented_key(headers: dict[str, str], key: str | None) -> None:
    assert presented_key(request_with(headers)) == key


@pytest.mark.parametrize("key, tenant", [
    ("key-acme", "acme"), ("key-globex", "globex"), ("key-acm", None), ("key-acme ", None), ("", None),
], ids=["acme", "globex", "prefix", "trailing-space", "empty"])
def test_keys_map_to_tenants(key: str, tenant: str | None) -> None:
    assert tenant_for_key(TOKENS, key) == tenant
