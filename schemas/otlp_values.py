"""OTLP attribute values as plain Python and as the text forms our rows hold (the engine writes
the same forms for whole columns, schemas/otlp_sql.py; Python writes the rare JSON ones)."""

from __future__ import annotations

import math
from base64 import b64encode
from collections.abc import Callable

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = [
    "SPAN_KIND_NAMES",
    "STATUS_CODE_NAMES",
    "any_value_to_python",
    "any_value_to_string",
    "double_to_string",
]

# Indexed by the OTLP enum number; spelled as the Collector ClickHouse exporter writes them.
SPAN_KIND_NAMES: tuple[str, ...] = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODE_NAMES: tuple[str, ...] = ("Unset", "Ok", "Error")


def double_to_string(f: float) -> str:
    """A double as the Collector's pcommon ``AsString`` writes it: the ES6 Number-to-String form.

    Shortest round-trip digits; exponent form below 1e-6 and from 1e21 up (``1e+21``,
    ``1.5e-7``); ``1.0`` -> ``"1"``; ``NaN``, ``Infinity``, ``-Infinity``. Negative zero is
    ``"-0"``, as Go's strconv writes it (ES6 itself would drop the sign).
    """
    text = repr(f)
    # repr already gives shortest digits in fixed form for 1e-4 <= |f| < 1e16, which is
    # inside ES6's fixed range; only its trailing ".0" differs. "nan" and "inf" hold an
    # "n", so one test sends them and the exponent forms to the slow path.
    if "e" in text or "n" in text:
        return _es6_special(text)
    return text[:-2] if text.endswith(".0") else text


def _es6_special(text: str) -> str:
    if text == "nan":
        return "NaN"
    if text.endswith("inf"):
        return "-Infinity" if text[0] == "-" else "Infinity"
    return _es6_from_exponent_repr(text)


def _es6_from_exponent_repr(text: str) -> str:
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).rstrip("0")
    # The value is 0.<digits> * 10**n (ES6 Number::toString's k digits and n).
    n = len(whole) + int(exponent)
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def any_value_to_python(v: AnyValue) -> object:
    """An AnyValue as plain Python: str, bool, int, float, bytes, list or dict.

    An empty value (no field set, or the profiles-only ``string_value_strindex``) is None.
    In a kvlist a repeated key keeps its last value, as pcommon's ``AsRaw`` does.
    """
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "array_value":
        return [any_value_to_python(item) for item in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value_to_python(kv.value) for kv in v.kvlist_value.values}
    if kind is None or kind == "string_value_strindex":
        return None
    return getattr(v, kind)


def any_value_to_string(v: AnyValue) -> str:
    """An AnyValue as the Collector's pcommon ``AsString`` writes it (otel-compat section 5).

    str as is; int in decimal; bool ``true``/``false``; double by ``double_to_string``;
    bytes as standard base64; arrays and kvlists as compact JSON (see ``_json``); empty ''.
    """
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind is None:
        return ""
    return _STRINGERS.get(kind, _empty)(v)


def _empty(v: AnyValue) -> str:
    return ""


def _json_string(s: str) -> str:
    text = orjson.dumps(s).decode()
    # Go's encoding/json escapes these two even with HTML escaping off; orjson does not.
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


def _json(v: AnyValue) -> str:
    """JSON text of a value as Go's encoding/json writes pcommon's ``AsRaw`` form.

    Compact, no HTML escaping, object keys sorted (Go sorts map keys), last of repeated
    keys wins, bytes as base64 strings, numbers in ES6 form. Deliberate difference: a NaN
    or infinite double becomes ``null``; Go fails the whole encoding and the Collector then
    writes '' for the entire value, which would lose a log body over one number.
    """
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return _json_string(v.string_value)
    if kind == "kvlist_value":
        members = {kv.key: _json(kv.value) for kv in v.kvlist_value.values}
        return "{" + ",".join(_json_string(key) + ":" + members[key] for key in sorted(members)) + "}"
    if kind == "array_value":
        return "[" + ",".join(_json(item) for item in v.array_value.values) + "]"
    if kind == "double_value":
        f = v.double_value
        return double_to_string(f) if math.isfinite(f) else "null"
    if kind == "bytes_value":
        return '"' + b64encode(v.bytes_value).decode("ascii") + '"'
    if kind == "int_value":
        return str(v.int_value)
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    return "null"


_STRINGERS: dict[str, Callable[[AnyValue], str]] = {
    "bool_value": lambda v: "true" if v.bool_value else "false",
    "int_value": lambda v: str(v.int_value),
    "double_value": lambda v: double_to_string(v.double_value),
    "bytes_value": lambda v: b64encode(v.bytes_value).decode("ascii"),
    "array_value": _json,
    "kvlist_value": _json,
}
