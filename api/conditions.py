"""The ``tags`` search parameter: attribute conditions such as ``span.http.route="/orders" customer.id>=42``.

The syntax is Jaeger's and Tempo's logfmt ``tags`` (``key=value`` pairs separated by spaces)
with TraceQL's comparison operators and scopes: ``span.`` (``log.`` on logs) or ``resource.``
before a key picks one attribute map, no prefix means either. A bare number compares
numerically, anything else (and every double-quoted value) as text, as TraceQL types
``42`` and ``"42"``. Conditions are ANDed; every one needs the attribute to be present.

Attributes are stored as text, numbers in the one form the pipeline writes them
(schemas/otlp_values.py: ``42``, ``1.5``, ``1e+21``). So ``=`` and ``!=`` with a number compare
that text (the form the Map value index can serve; exact for integers past 2**53), while
``<``, ``<=``, ``>``, ``>=`` compare as Float64.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, cast

from api.params import ATTRIBUTE_KEY_RULE, ParamError, is_attribute_key
from schemas.otlp_values import double_to_string

Operator = Literal["=", "!=", "<", "<=", ">", ">="]
Scope = Literal["record", "resource", "either"]  # record: the span's or the log record's own attributes

MAX_CONDITIONS = 10
VALUE_MAX_CHARS = 256
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?")
# key, operator, value: a double-quoted string (\" and \\ escaped) or a run of non-space characters.
_CONDITION = re.compile(r'(?P<key>[^\s=<>!"&]+)\s*(?P<op>!=|<=|>=|=|<|>)\s*'
                        r'(?P<value>"(?:[^"\\]|\\.)*"|(?:[^\s"&]|&(?!&))+)?')
_SEPARATOR = re.compile(r"\s*&&\s*|\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Condition:
    """One attribute condition. ``number`` is set when the value was a bare number, and
    ``texts`` then holds the forms the pipeline stores that number in."""

    scope: Scope
    key: str
    op: Operator
    value: str
    number: float | None = None
    texts: tuple[str, ...] = ()


def parse_conditions(text: str, name: str, record_prefix: str) -> tuple[Condition, ...]:
    """The conditions of a ``tags`` value; ``record_prefix`` is ``span`` or ``log``.

    Raises ParamError(name, ...) for a syntax error, a key outside the OTel pattern, a value
    that is too long or holds control characters, or more than MAX_CONDITIONS conditions."""
    conditions: list[Condition] = []
    pos, end = len(text) - len(text.lstrip()), len(text.rstrip())
    while pos < end:
        if conditions:
            sep = _SEPARATOR.match(text, pos)
            if sep is None:
                raise ParamError(name, f"condition {len(conditions) + 1}: separate conditions with a space or &&")
            pos = sep.end()
        match = _CONDITION.match(text, pos)
        number = len(conditions) + 1
        if match is None:
            raise ParamError(name, f"condition {number}: expected key=value, key!=value, key<value, key<=value, "
                                   "key>value or key>=value (quote values with spaces: key=\"a b\")")
        if len(conditions) == MAX_CONDITIONS:
            raise ParamError(name, f"at most {MAX_CONDITIONS} conditions")
        if match.group("value") is None and text.startswith('"', match.end()):
            raise ParamError(name, f"condition {number}: the quoted value has no closing \"")
        conditions.append(_condition(match, name, number, record_prefix))
        pos = match.end()
    if not conditions:
        raise ParamError(name, "must hold at least one condition such as http.route=/orders")
    return tuple(conditions)


def _condition(match: re.Match[str], name: str, number: int, record_prefix: str) -> Condition:
    raw_key, op, raw_value = match.group("key"), match.group("op"), match.group("value")
    where = f"condition {number}"
    scope: Scope = "either"
    key = raw_key
    for prefix, named in ((f"{record_prefix}.", "record"), ("resource.", "resource")):
        if raw_key.startswith(prefix):
            scope, key = cast(Scope, named), raw_key[len(prefix):]
            break
    if not is_attribute_key(key):
        raise ParamError(name, f"{where}: the attribute key must be {ATTRIBUTE_KEY_RULE}")
    if raw_value is None:
        raise ParamError(name, f"{where}: no value after {op} (write \"\" for an empty value)")
    numeric: float | None = None
    if raw_value.startswith('"'):
        value = _unescape(raw_value[1:-1], name, where)
    else:
        value = raw_value
        if value[0] in "=<>!":
            raise ParamError(name, f"{where}: a value starting with {value[0]} must be quoted")
        if _NUMBER.fullmatch(value):
            numeric = float(value)
            if not math.isfinite(numeric):
                raise ParamError(name, f"{where}: the number is out of range")
    if len(value) > VALUE_MAX_CHARS:
        raise ParamError(name, f"{where}: the value is longer than {VALUE_MAX_CHARS} characters")
    if _CONTROL.search(value):
        raise ParamError(name, f"{where}: the value holds control characters")
    texts = () if numeric is None else number_texts(value, numeric)
    return Condition(scope, key, cast(Operator, op), value, numeric, texts)


def number_texts(literal: str, number: float) -> tuple[str, ...]:
    """The stored forms of a number: a double's (``1e+21``, ``-0``) and, when it is whole, an
    integer's (exact from the literal, so 9007199254740993 stays itself)."""
    forms = [double_to_string(number)]
    if number.is_integer():
        forms.append(str(int(Decimal(literal))))
    return tuple(dict.fromkeys(forms))


def _unescape(quoted: str, name: str, where: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in '"\\':
            raise ParamError(name, f"{where}: only \\\" and \\\\ are escapes inside a quoted value")
        return m.group(1)
    return _UNESCAPE.sub(one, quoted)
