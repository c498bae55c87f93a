"""Tests for schemas.otlp_values: AnyValue as string and as Python (attribute maps, IDs and
enum names are written by the engine: tests/unit/schemas/test_otlp_sql.py)."""

from __future__ import annotations

import math

import pytest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)

from schemas.otlp_values import (
    any_value_to_python,
    any_value_to_string,
    double_to_string,
)


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def array(*items: AnyValue) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=items))


def kvlist(*pairs: tuple[str, AnyValue]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[kv(k, v) for k, v in pairs]))


# One-letter constructors keep the tables below readable.
def S(s: str) -> AnyValue:  # noqa: N802
    return AnyValue(string_value=s)


def I(n: int) -> AnyValue:  # noqa: E743, N802
    return AnyValue(int_value=n)


def D(f: float) -> AnyValue:  # noqa: N802
    return AnyValue(double_value=f)


def B(b: bool) -> AnyValue:  # noqa: N802
    return AnyValue(bool_value=b)


def Y(y: bytes) -> AnyValue:  # noqa: N802
    return AnyValue(bytes_value=y)


# Expected texts follow the Collector's pcommon AsString (Go strconv + encoding/json).
DOUBLES = [
    pytest.param(1.5, "1.5", id="fraction"),
    pytest.param(1.0, "1", id="integral-drops-point-zero"),
    pytest.param(100.0, "100", id="hundred"),
    pytest.param(0.0, "0", id="zero"),
    pytest.param(-0.0, "-0", id="negative-zero-keeps-sign-like-go"),
    pytest.param(637.704, "637.704", id="shortest-digits"),
    pytest.param(0.1 + 0.2, "0.30000000000000004", id="round-trip-digits"),
    pytest.param(-2.5e-5, "-0.000025", id="small-negative-fixed"),
    pytest.param(1e-6, "0.000001", id="smallest-fixed"),
    pytest.param(1e-7, "1e-7", id="below-1e-6-exponent-no-padding"),
    pytest.param(1.5e-7, "1.5e-7", id="exponent-with-fraction"),
    pytest.param(1.23e-18, "1.23e-18", id="two-digit-negative-exponent"),
    pytest.param(1e16, "10000000000000000", id="1e16-fixed-where-repr-is-not"),
    pytest.param(1e20, "100000000000000000000", id="1e20-fixed"),
    pytest.param(123456789012345680000.0, "123456789012345680000", id="largest-fixed"),
    pytest.param(1e21, "1e+21", id="1e21-exponent"),
    pytest.param(1.2345e21, "1.2345e+21", id="exponent-fraction-positive"),
    pytest.param(1.7976931348623157e308, "1.7976931348623157e+308", id="max-double"),
    pytest.param(5e-324, "5e-324", id="min-subnormal"),
    pytest.param(math.nan, "NaN", id="nan"),
    pytest.param(math.inf, "Infinity", id="infinity"),
    pytest.param(-math.inf, "-Infinity", id="negative-infinity"),
]


@pytest.mark.parametrize(("value", "text"), DOUBLES)
def test_double_as_es6_text(value: float, text: str) -> None:
    assert double_to_string(value) == text
    assert any_value_to_string(D(value)) == text


AS_STRING = [
    pytest.param(S("héllo <b>&"), "héllo <b>&", id="string-as-is"),
    pytest.param(S(""), "", id="empty-string"),
    pytest.param(I(0), "0", id="int-zero"),
    pytest.param(I(-42), "-42", id="int-negative"),
    pytest.param(I(2**63 - 1), "9223372036854775807", id="int-max"),
    pytest.param(B(True), "true", id="bool-true"),
    pytest.param(B(False), "false", id="bool-false"),
    pytest.param(Y(b"\x00\xffhi"), "AP9oaQ==", id="bytes-standard-base64"),
    pytest.param(Y(b"\xfb\xff"), "+/8=", id="bytes-not-url-safe"),
    pytest.param(Y(b""), "", id="bytes-empty"),
    pytest.param(AnyValue(), "", id="empty-value"),
    pytest.param(array(), "[]", id="array-empty"),
    pytest.param(kvlist(), "{}", id="kvlist-empty"),
    pytest.param(
        array(S("a"), I(1), B(True), D(1.5), AnyValue(), Y(b"\x01\x02")),
        '["a",1,true,1.5,null,"AQI="]',
        id="array-keeps-json-types",
    ),
    pytest.param(array(D(1.0), D(1e21), D(1e-7)), "[1,1e+21,1e-7]", id="array-doubles-es6"),
    pytest.param(array(D(math.nan), D(math.inf)), "[null,null]", id="array-non-finite-as-null"),
    pytest.param(kvlist(("b", I(1)), ("a", S("x"))), '{"a":"x","b":1}', id="kvlist-keys-sorted"),
    pytest.param(kvlist(("k", I(1)), ("k", I(2))), '{"k":2}', id="kvlist-repeated-key-last-wins"),
    pytest.param(kvlist(("h", S("<a&b>"))), '{"h":"<a&b>"}', id="kvlist-no-html-escaping"),
    pytest.param(kvlist(("é", S("ü"))), '{"é":"ü"}', id="kvlist-non-ascii-unescaped"),
    pytest.param(
        array(S('q"\\\n\t\x01\u2028')),
        '["q\\"\\\\\\n\\t\\u0001\\u2028"]',
        id="json-string-escapes-like-go",
    ),
    pytest.param(
        kvlist(("m", kvlist(("z", array(I(1), kvlist())), ("a", AnyValue())))),
        '{"m":{"a":null,"z":[1,{}]}}',
        id="nested",
    ),
]


@pytest.mark.parametrize(("value", "text"), AS_STRING)
def test_any_value_to_string(value: AnyValue, text: str) -> None:
    assert any_value_to_string(value) == text


AS_PYTHON = [
    pytest.param(S("x"), "x", id="string"),
    pytest.param(I(7), 7, id="int"),
    pytest.param(D(2.5), 2.5, id="double"),
    pytest.param(B(False), False, id="bool"),
    pytest.param(Y(b"\x00"), b"\x00", id="bytes"),
    pytest.param(AnyValue(), None, id="empty"),
    pytest.param(array(S("a"), I(1), AnyValue()), ["a", 1, None], id="array"),
    pytest.param(kvlist(("k", I(1)), ("k", S("v"))), {"k": "v"}, id="kvlist-last-wins"),
    pytest.param(
        kvlist(("n", kvlist(("l", array(B(True)))))),
        {"n": {"l": [True]}},
        id="nested",
    ),
]


@pytest.mark.parametrize(("value", "expected"), AS_PYTHON)
def test_any_value_to_python(value: AnyValue, expected: object) -> None:
    result = any_value_to_python(value)
    assert result == expected
    assert type(result) is type(expected)
