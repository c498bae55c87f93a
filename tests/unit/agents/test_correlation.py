"""Tests for agents.correlation: sources, precedence, generation and resolution."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from agents.correlation import (
    Candidate,
    CorrelationConfig,
    Resolution,
    base36,
    find_correlation_id,
    generate_correlation_id,
    generated_id,
    generated_id_sql,
    parse_baggage,
    resolve_correlation_id,
)
from agents.validation import validate_correlation_id
from sinks.engine import Engine

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ANCHOR_NS = 1_700_000_000_123_456_789

# (where the ID is put: res(ource), rec(ord), body or trace; what is put there; the expected
# candidate). One place per row.
_HDR = "http.request.header."
SOURCES = [
    pytest.param("res", {"correlation_id": "r1"}, Candidate("r1", "resource"), id="resource"),
    pytest.param("rec", {"correlation_id": "a1"}, Candidate("a1", "attribute"), id="attribute"),
    pytest.param("rec", {"correlation_id": 42}, Candidate("42", "attribute"), id="int-attribute"),
    pytest.param("rec", {"X-Correlation-ID": "h1"}, Candidate("h1", "header"), id="header-exact"),
    pytest.param("rec", {"x-request-id": "h2"}, Candidate("h2", "header"), id="header-lower"),
    pytest.param(
        "rec",
        {_HDR + "x-request-id": ["", "h3", "h4"]},
        Candidate("h3", "header"),
        id="header-semconv-list",
    ),
    pytest.param("res", {"X-Request-ID": "h5"}, Candidate("h5", "header"), id="header-resource"),
    pytest.param("rec", {"baggage": "a=1,correlation_id=b1"}, Candidate("b1", "baggage"), id="bag"),
    pytest.param(
        "rec",
        {_HDR + "baggage": ["a=1", "correlation_id=b%2F2;p=1"]},
        Candidate("b/2", "baggage"),
        id="bag-semconv-list-decoded",
    ),
    pytest.param("res", {"baggage": "correlation_id=b3"}, Candidate("b3", "baggage"), id="bag-res"),
    pytest.param("body", {"requestId": "j1"}, Candidate("j1", "body"), id="body-map"),
    pytest.param("body", '{"correlationId": "j2"}', Candidate("j2", "body"), id="body-json"),
    pytest.param("body", ' {"request_id": 7}', Candidate("7", "body"), id="body-json-int"),
    pytest.param("trace", TRACE, Candidate(TRACE, "trace"), id="known-for-trace"),
]


@pytest.mark.parametrize(("where", "payload", "expected"), SOURCES)
def test_each_source_is_found(where: str, payload: Any, expected: Candidate) -> None:
    found = find_correlation_id(
        resource_attrs=payload if where == "res" else {},
        record_attrs=payload if where == "rec" else {},
        body=payload if where == "body" else None,
        known_for_trace=payload if where == "trace" else None,
    )
    assert found == expected


NOTHING = [
    pytest.param({}, {}, None, id="nothing-at-all"),
    pytest.param({}, {"correlation_id": ""}, None, id="empty-string"),
    pytest.param({}, {"correlation_id": "  "}, None, id="whitespace-string"),
    pytest.param({}, {"correlation_id": True}, None, id="bool"),
    pytest.param({}, {"correlation_id": 1.5}, None, id="float"),
    pytest.param({}, {"correlation_id": ["x"]}, None, id="list-on-plain-attribute"),
    pytest.param(
        {},
        {"http.request.header.x-request-id": ["", 3]},
        None,
        id="header-list-no-string",
    ),
    pytest.param({}, {"baggage": "other=1"}, None, id="baggage-without-member"),
    pytest.param({}, {}, "correlation_id=x", id="body-plain-text"),
    pytest.param({}, {}, '{"correlation_id": ', id="body-broken-json"),
    pytest.param({}, {}, '["correlation_id"]', id="body-json-array"),
    pytest.param({}, {}, '{"correlation_id": {"a": 1}}', id="body-nested-value"),
    pytest.param({}, {}, {"nested": {"correlation_id": "x"}}, id="body-not-top-level"),
    pytest.param({}, {}, b'{"correlation_id": "x"}', id="body-bytes"),
    pytest.param({}, {}, '{"a": ' + "[" * 100_000, id="body-deep-nesting"),
]


@pytest.mark.parametrize(("resource", "record", "body"), NOTHING)
def test_no_candidate(resource: dict[str, object], record: dict[str, object], body: object) -> None:
    assert find_correlation_id(resource, record, body) is None


# Row n holds the winner's source and every lower-precedence source, so each row proves
# that one source beats the next one down.
_ALL_RESOURCE = {
    "correlation_id": "res",
    "X-Request-ID": "hdr-res",
    "baggage": "correlation_id=bag-res",
}
_ALL_RECORD = {
    "correlation_id": "attr",
    "X-Correlation-ID": "hdr-rec",
    "baggage": "correlation_id=bag-rec",
}
PRECEDENCE = [
    pytest.param(
        _ALL_RESOURCE,
        _ALL_RECORD,
        Candidate("res", "resource"),
        id="resource-beats-attribute",
    ),
    pytest.param(
        {k: v for k, v in _ALL_RESOURCE.items() if k != "correlation_id"},
        _ALL_RECORD,
        Candidate("attr", "attribute"),
        id="attribute-beats-header",
    ),
    pytest.param(
        {"X-Request-ID": "hdr-res", "baggage": "correlation_id=bag-res"},
        {"X-Correlation-ID": "hdr-rec", "baggage": "correlation_id=bag-rec"},
        Candidate("hdr-rec", "header"),
        id="record-header-beats-resource-header",
    ),
    pytest.param(
        {"X-Request-ID": "hdr-res"},
        {"baggage": "correlation_id=bag-rec"},
        Candidate("hdr-res", "header"),
        id="resource-header-beats-baggage",
    ),
    pytest.param(
        {"baggage": "correlation_id=bag-res"},
        {"baggage": "correlation_id=bag-rec"},
        Candidate("bag-rec", "baggage"),
        id="record-baggage-beats-resource-baggage",
    ),
    pytest.param(
        {"baggage": "correlation_id=bag-res"},
        {},
        Candidate("bag-res", "baggage"),
        id="baggage-beats-body",
    ),
    pytest.param({}, {}, Candidate("body", "body"), id="body-beats-trace"),
]


@pytest.mark.parametrize(("resource", "record", "expected"), PRECEDENCE)
def test_precedence(
    resource: dict[str, object], record: dict[str, object], expected: Candidate
) -> None:
    body = '{"correlation_id": "body"}'
    found = find_correlation_id(resource, record, body, known_for_trace="trace-id")
    assert found == expected


HEADER_ORDER = [
    pytest.param(
        {"X-Request-ID": "second", "X-Correlation-ID": "first"},
        "first",
        id="config-order-wins",
    ),
    pytest.param(
        {"x-correlation-id": "lower", "http.request.header.x-correlation-id": ["semconv"]},
        "lower",
        id="lower-before-semconv",
    ),
]


@pytest.mark.parametrize(("record", "expected"), HEADER_ORDER)
def test_header_order(record: dict[str, object], expected: str) -> None:
    assert find_correlation_id({}, record) == Candidate(expected, "header")


def test_config_changes_the_keys() -> None:
    config = CorrelationConfig(
        attribute_keys=("cid",),
        header_names=("X-Trace-Tag",),
        baggage_member="cid",
        body_keys=("cid",),
    )
    record = {"correlation_id": "ignored", "x-trace-tag": "tag-1"}
    assert find_correlation_id({}, record, config=config) == Candidate("tag-1", "header")


BAGGAGE = [
    pytest.param("", {}, id="empty"),
    pytest.param("a=1", {"a": "1"}, id="one-member"),
    pytest.param(" a = 1 , b=2 ", {"a": "1", "b": "2"}, id="whitespace-trimmed"),
    pytest.param("a=1;prop=x;flag,b=2", {"a": "1", "b": "2"}, id="properties-dropped"),
    pytest.param("a=hello%20world%2C%3B", {"a": "hello world,;"}, id="percent-decoded"),
    pytest.param("a=1,a=2", {"a": "1"}, id="first-occurrence-wins"),
    pytest.param("novalue,=x,b=", {"b": ""}, id="malformed-skipped"),
    pytest.param("a=x=y", {"a": "x=y"}, id="equals-in-value"),
    pytest.param(
        ",".join(f"k{i}=v" for i in range(300)),
        {f"k{i}": "v" for i in range(180)},
        id="member-cap",
    ),
]


@pytest.mark.parametrize(("header", "expected"), BAGGAGE)
def test_parse_baggage(header: str, expected: dict[str, str]) -> None:
    assert parse_baggage(header) == expected


BASE36 = [
    pytest.param(0, "0", id="zero"),
    pytest.param(35, "z", id="last-digit"),
    pytest.param(36, "10", id="carry"),
    pytest.param(1_700_000_000_123, "loyw3v5n", id="epoch-ms"),
]


@pytest.mark.parametrize(("n", "expected"), BASE36)
def test_base36(n: int, expected: str) -> None:
    assert base36(n) == expected
    assert int(expected, 36) == n


def test_base36_rejects_negative() -> None:
    with pytest.raises(ValueError, match="^n:"):
        base36(-1)


def test_generated_id_is_a_pure_function_of_the_trace() -> None:
    generated = generate_correlation_id(TRACE, ANCHOR_NS)
    digest = hashlib.sha256(TRACE.encode()).hexdigest()[:8]
    assert generated == f"olly-{base36(ANCHOR_NS // 1_000_000)}-{digest}"
    assert generate_correlation_id(TRACE.upper(), ANCHOR_NS) == generated
    # Only the anchor's millisecond counts: the same ms, other ns, same ID.
    assert generate_correlation_id(TRACE, ANCHOR_NS - ANCHOR_NS % 1_000_000) == generated
    assert re.fullmatch(r"olly-[0-9a-z]{1,11}-[0-9a-f]{8}", generated)
    assert validate_correlation_id(generated).ok


GENERATED_DIFFERS = [
    pytest.param("5bf92f3577b34da6a3ce929d0e0e4736", ANCHOR_NS, id="other-trace"),
    pytest.param(TRACE, ANCHOR_NS + 1_000_000, id="other-anchor-ms"),
    pytest.param("logs/service-a/line-17", ANCHOR_NS, id="record-identity-string"),
]


@pytest.mark.parametrize(("identity", "anchor_ns"), GENERATED_DIFFERS)
def test_generated_id_changes_with_its_inputs(identity: str, anchor_ns: int) -> None:
    other = generate_correlation_id(identity, anchor_ns)
    assert other != generate_correlation_id(TRACE, ANCHOR_NS)
    assert validate_correlation_id(other).ok


@pytest.mark.parametrize("anchor_ns", [-1, 36**11 * 1_000_000], ids=["negative", "beyond-format"])
def test_generate_rejects_anchor_outside_format(anchor_ns: int) -> None:
    with pytest.raises(ValueError, match="^anchor_time_ns:"):
        generate_correlation_id(TRACE, anchor_ns)


GENERATED = generate_correlation_id(TRACE, ANCHOR_NS)
RESOLVE = [
    pytest.param(
        Candidate("req-1", "header"),
        Resolution("req-1", "header", None, None),
        id="valid-kept",
    ),
    pytest.param(None, Resolution(GENERATED, "generated", None, None), id="absent-generated"),
    pytest.param(
        Candidate("<b>x</b>", "body"),
        Resolution(GENERATED, "generated", "<b>x</b>", "markup"),
        id="invalid-replaced",
    ),
    pytest.param(
        Candidate("a\x1b[31m\\\u202e", "attribute"),
        Resolution(GENERATED, "generated", "a\\x1b[31m\\\\\\u202e", "control_char"),
        id="controls-escaped",
    ),
    pytest.param(
        Candidate("x" * 10_000, "resource"),
        Resolution(GENERATED, "generated", "x" * 256, "too_long"),
        id="rejected-truncated",
    ),
    pytest.param(
        Candidate("\x00" * 100, "resource"),
        Resolution(GENERATED, "generated", "\\x00" * 64, "nul_byte"),
        id="escapes-not-cut",
    ),
    pytest.param(
        Candidate("\ud800", "body"),
        Resolution(GENERATED, "generated", "\\ud800", "charset"),
        id="lone-surrogate-escaped",
    ),
]


@pytest.mark.parametrize(("candidate", "expected"), RESOLVE)
def test_resolve(candidate: Candidate | None, expected: Resolution) -> None:
    resolution = resolve_correlation_id(candidate, TRACE, ANCHOR_NS, CorrelationConfig())
    assert resolution == expected
    if resolution.rejected_value is not None:
        resolution.rejected_value.encode("utf-8")
        assert len(resolution.rejected_value) <= 256


@pytest.mark.parametrize("anchor_ns", [-5, 10**30], ids=["negative", "huge"])
def test_resolve_never_raises_on_odd_anchor(anchor_ns: int) -> None:
    resolution = resolve_correlation_id(None, TRACE, anchor_ns, CorrelationConfig())
    assert validate_correlation_id(resolution.correlation_id).ok


GENERATED_SQL = [
    pytest.param("", 0, id="empty-identity-zero-time"),
    pytest.param("4BF92F3577B34DA6A3CE929D0E0E4736", ANCHOR_NS, id="upper-case-trace"),
    pytest.param("1763856000123:checkout:Ünïcödé İ", 999_999, id="non-ascii-identity"),
    pytest.param("tab\tnew\nline'quote\\", 35_000_000, id="escapes"),
    pytest.param("x", 2**64 - 1, id="largest-anchor"),
]


@pytest.mark.parametrize(("identity", "anchor_ns"), GENERATED_SQL)
def test_the_engine_generates_the_same_id(engine: Engine, identity: str, anchor_ns: int) -> None:
    sql = f"SELECT {generated_id_sql('{i:String}', '{n:UInt64}')} AS id"
    got = engine.arrow(sql, {"i": identity, "n": anchor_ns}).column("id").to_pylist()
    assert got == [generated_id(identity, anchor_ns)]
