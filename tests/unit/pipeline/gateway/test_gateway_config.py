"""Gateway config checks at build, auth header parsing and body decompression limits."""
from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest
from aiokafka import errors as kafka_errors

from core.credentials import IngestToken
from core.errors import ConfigError
from core.settings import Settings, load_settings
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
from pipeline.gateway.producer import produce_error


def _settings(**sections: dict[str, Any]) -> Settings:
    return Settings.model_validate(sections)


def _tokens(**tokens: str) -> tuple[IngestToken, ...]:
    return _settings(otlp={"auth_tokens": tokens}).otlp.auth_tokens


CONFIG_ERRORS = [
    pytest.param({"otlp": {"max_request_bytes": 2000, "max_inflight_bytes": 1000}}, "localhost:9092",
                 "otlp.max_request_bytes", id="request-over-inflight"),
    pytest.param({}, " ", "kafka.bootstrap", id="no-bootstrap"),
    pytest.param({"otlp": {"grpc_port": 4317, "http_port": 4317}}, "localhost:9092", "otlp.grpc_port",
                 id="same-ports"),
]


@pytest.mark.parametrize(("sections", "bootstrap", "named"), CONFIG_ERRORS)
def test_build_rejects_bad_config(sections: dict[str, Any], bootstrap: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        build_gateway(_settings(**sections), bootstrap)


def test_an_empty_tenant_is_refused_when_the_settings_are_read() -> None:
    with pytest.raises(ConfigError, match="OLLYSTACK_OTLP_AUTH_TOKENS=<secret>"):
        load_settings(environ={"OLLYSTACK_OTLP_AUTH_TOKENS": "tok= "})


def test_config_is_frozen_and_hides_tokens() -> None:
    config = GatewayConfig.from_settings(_settings(otlp={"auth_tokens": "s3cret=acme"}), "k:9092")
    assert [(t.token.get_secret_value(), t.tenant) for t in config.auth_tokens] == [("s3cret", "acme")]
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump(mode="json"))
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
    auth = Authenticator(_tokens(t1="acme", t2="globex"))
    if isinstance(expected, str):
        assert auth.tenant_for(headers) == expected
    else:
        with pytest.raises(expected):
            auth.tenant_for(headers)


def test_auth_off_gives_no_tenant() -> None:
    assert Authenticator(()).tenant_for({"authorization": "Bearer whatever"}) is None


DECOMPRESS_CASES = [
    pytest.param(b"abc", "", 10, b"abc", id="identity"),
    pytest.param(gzip.compress(b"a" * 10), "gzip", 10, b"a" * 10, id="gzip-at-limit"),
    pytest.param(zlib.compress(b"hello"), "deflate", 10, b"hello", id="deflate"),
    pytest.param(gzip.compress(b"a" * 11), "gzip", 10, RequestTooLargeError, id="gzip-over-limit"),
    pytest.param(gzip.compress(b"a" * 10_000_000), "GZIP", 1000, RequestTooLargeError, id="gzip-bomb"),
    pytest.param(b"not gzip", "gzip", 10, InvalidRequestError, id="not-gzip"),
    pytest.param(gzip.compress(b"a" * 100)[:-12], "gzip", 1000, InvalidRequestError, id="truncated"),
    pytest.param(gzip.compress(b"a" * 10) + b"garbage", "gzip", 1000, InvalidRequestError, id="trailing-garbage"),
    pytest.param(b"x", "br", 10, UnsupportedMediaTypeError, id="brotli-unsupported"),
]


@pytest.mark.parametrize(("body", "encoding", "limit", "expected"), DECOMPRESS_CASES)
def test_decompress(body: bytes, encoding: str, limit: int, expected: Any) -> None:
    if isinstance(expected, bytes):
        assert decompress(body, encoding, limit) == expected
    else:
        with pytest.raises(expected):
            decompress(body, encoding, limit)


@pytest.mark.parametrize(("error", "status", "retry"), [
    (kafka_errors.KafkaTimeoutError("Batch for TopicPartition(t, 0) is expired"), 503, True),
    (kafka_errors.RequestTimedOutError(), 503, True),
    (kafka_errors.NotEnoughReplicasError(), 503, True),
    (kafka_errors.KafkaConnectionError(), 503, True),
    (kafka_errors.MessageSizeTooLargeError(), 500, False),
    (kafka_errors.TopicAuthorizationFailedError(), 500, False),
], ids=["batch-expired", "request-timeout", "not-enough-replicas", "connection", "too-large", "not-allowed"])
def test_kafka_failures_tell_the_client_whether_to_retry(error: Exception, status: int, retry: bool) -> None:
    answer = produce_error(error, 1.0)
    assert answer.http_status == status and (answer.retry_after_s is not None) is retry
