"""Ingest tokens and API keys: their settings form, where a request presents one, and
token -> grant in constant time."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from core.credentials import (
    TokenTable,
    parse_api_keys,
    parse_ingest_tokens,
    presented_token,
)
from core.errors import ConfigError
from core.settings import load_settings

TABLE = TokenTable([(SecretStr("key-acme"), "acme"), (SecretStr("key-globex"), "globex")])


@pytest.mark.parametrize(("headers", "key"), [
    ({"authorization": "Bearer key-acme"}, "key-acme"),
    ({"authorization": "bearer   key-acme "}, "key-acme"),
    ({"x-api-key": "key-acme"}, "key-acme"),
    ({"authorization": "Basic abc", "x-api-key": "key-acme"}, "key-acme"),
    ({"authorization": "Bearer key-acme", "x-api-key": "key-globex"}, "key-acme"),
    ({"authorization": "Bearer ", "x-api-key": "key-globex"}, "key-globex"),
    ({"authorization": "key-acme"}, None),
    ({"authorization": "Bearer "}, None),
    ({}, None),
], ids=["bearer", "bearer-lowercase-spaces", "x-api-key", "basic-falls-back", "bearer-wins",
        "empty-bearer-falls-back", "no-scheme", "empty-bearer", "none"])
def test_the_presented_token(headers: dict[str, str], key: str | None) -> None:
    assert presented_token(headers) == key


@pytest.mark.parametrize(("key", "tenant"), [
    ("key-acme", "acme"), ("key-globex", "globex"), ("key-acm", None), ("key-acme ", None), ("", None),
], ids=["acme", "globex", "prefix", "trailing-space", "empty"])
def test_tokens_map_to_what_they_grant(key: str, tenant: str | None) -> None:
    assert TABLE.grant_for(key) == tenant


@pytest.mark.parametrize(("value", "expected"), [
    ("k1=acme,k2=globex", [("k1", "acme", "viewer"), ("k2", "globex", "viewer")]),
    ("k1=acme:admin, k2=globex:viewer", [("k1", "acme", "admin"), ("k2", "globex", "viewer")]),
    (["k1=acme"], [("k1", "acme", "viewer")]),
    ({"k1": "acme:admin"}, [("k1", "acme", "admin")]),
], ids=["env", "roles", "toml-array", "toml-table"])
def test_api_keys_are_read_from_every_settings_form(value: Any, expected: list[tuple[str, str, str]]) -> None:
    parsed = parse_api_keys(value)
    assert [(k["token"], k["tenant"], k["role"]) for k in parsed] == expected


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("OLLYSTACK_API_KEYS", "k1=acme:root", "role 'root' is not one of viewer, admin"),
    ("OLLYSTACK_API_KEYS", "k1=acme,k1=globex", "the same token is given twice"),
    ("OLLYSTACK_API_KEYS", "k1=bad tenant", "is not 1-64 characters"),
    ("OLLYSTACK_OTLP_AUTH_TOKENS", "s3cret-no-tenant", "expected token=tenant items"),
    ("OLLYSTACK_OTLP_AUTH_TOKENS", "s3cret=", "expected token=tenant items"),
], ids=["unknown-role", "duplicate", "tenant-charset", "no-tenant", "empty-tenant"])
def test_a_bad_credential_is_named_and_never_shown(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={variable: value})
    assert variable in str(info.value) and message in str(info.value)
    assert "s3cret" not in str(info.value) and "k1=" not in str(info.value)


def test_ingest_tokens_carry_no_role() -> None:
    assert parse_ingest_tokens("t=acme") == [{"token": "t", "tenant": "acme"}]
    with pytest.raises(ConfigError, match="OLLYSTACK_OTLP_AUTH_TOKENS"):
        load_settings(environ={"OLLYSTACK_OTLP_AUTH_TOKENS": "t=acme:admin"})
