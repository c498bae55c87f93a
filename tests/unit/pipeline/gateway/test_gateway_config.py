"""Gateway config checks at build, auth header parsing and body decompression limits."""
from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest

from core.errors import ConfigError
from core.settings import Settings
from pipeline.gateway import build_gateway
from pipeline.gateway.auth import Authenticator
from pipeline.gateway.config import GatewayConfig
from pipeline.gateway.errors import (
    InvalidRequestError,
    RequestTooLargeError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
)
from pipeline.gateway.http_server import decompress


def _settings(**sections: dict[str, Any]) -> Settings:
    return Settings.model_validate(sections)


CONFIG_ERRORS = [
    pytest.param({"otlp": {"max_request_bytes": 2000, "max_inflight_bytes": 1000}}, "localhost:9092",
                 "otlp.max_request_bytes", id="request-over-inflight"),
    pytest.param({}, " ", "kafka.bootstrap", id="no-bootstrap"),
    pytest.param({"kafka": {"max_message_bytes": 100}}, "localhost:9092", "kafka.max_message_bytes",
                 id="tiny-message-limit"),
    pytest.param({"otlp": {"grpc_port": 4317, "http_port": 4317}}, "localhost:9092", "otlp.grpc_port",
                 id="same-ports"),
    pytest.param({"otlp": {"auth_tokens": {"tok": " "}}}, "localhost:9092", "otlp.auth_tokens",
                 id="empty-tenant"),
]


@pytest.mark.parametrize(("sections", "bootstrap", "named"), CONFIG_ERRORS)
def test_build_rejects_bad_config(sections: dict[str, Any], bootstrap: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        build_gateway(_settings(**sections), bootstrap)


def test_config_is_frozen_and_hides_tokens() -> None:
    config = GatewayConfig.from_settings(_settings(otlp={"auth_tokens": "s3cret=acme"}), "k:9092")
    assert config.auth_tokens == {"s3cret": "acme"}
    assert "s3cret" not in repr(config)
    with pytest.raises(ValueError):
        config.ack_timeout_s = 1  # type: ignore[misc]


AUTH_CASES = [
    pytest.param({"authorization": "Bearer t1"}, "acme", id="bearer"),
    pytest.param({"authorization": "bearer   t2 "}, "globex", id="bearer-lowercase-padded"),
    pytest.param({"x-api-key": "t1"}, "acme", id="api-key"),
    pytest.param({}, UnauthenticatedError, id="missing"),
    pytest.param({"authorization": "Basic dDE="}, UnauthenticatedError, id="basic-not-accepted"),
    pytest.param({"authorization": "Bearer t3"}, UnauthenticatedError, id="unknown-token"),
    pytest.param({"x-api-key": "t"}, UnauthenticatedError, id="prefix-of-a-token"),
]


@pytest.mark.parametrize(("headers", "expected"), AUTH_CASES)
def test_auth(headers: dict[str, str], expected: Any) -> None:
    auth = Authenticator({"t1": "acme", "t2": "globex"})
    if isinstance(expected, str):
        assert auth.tenant_for(headers) == expected
    else:
        with pytest.raises(expected):
            auth.tenant_for(headers)


def test_auth_off_gives_no_tenant() -> None:
    assert Authenticator({}).tenant_for({"authorization": "Bearer whatever"}) is None


DECOMPRESS_CASES = [
    pytest.param(b"abc", "", 10, b"abc", id="identity"),
    pytest.param(gzip.compress(b"a" * 10), "gzip", 10, b"a" * 10, id="gzip-at-limit"),
    pytest.param(zlib.compress(b"hello"), "deflate", 10, b"hello", id="deflate"),
    pytest.param(gzip.compress(b"a" * 11), "gzip", 10, RequestTooLargeError, id="gzip-over-limit"),
    pytest.param(gzip.compress(b"a" * 10_000_000), "GZIP", 1000, RequestTooLargeError, id="gzip-bomb"),
    pytest.param(b"not gzip", "gzip", 10, InvalidRequestError, id="not-gzip"),
    pytest.param(gzip.compress(b"a" * 100)[:-12], "gzip", 1000, InvalidRequestError, id="truncated"),
    pytest.param(b"x", "br", 10, UnsupportedMediaTypeError, id="brotli-unsupported"),
]


@pytest.mark.parametrize(("body", "encoding", "limit", "expected"), DECOMPRESS_CASES)
def test_decompress(body: bytes, encoding: str, limit: int, expected: Any) -> None:
    if isinstance(expected, bytes):
        assert decompress(body, encoding, limit) == expected
    else:
        with pytest.raises(expected):
            decompress(body, encoding, limit)
