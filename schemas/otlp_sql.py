"""OTLP values as ClickHouse SQL expressions over the staged columns (schemas/otlp_wire.py):
the same text forms as schemas/otlp_values.py, computed by the engine for whole columns.

Every function returns SQL text for one expression; the arguments are SQL expressions too.
Values whose text needs Python (arrays and kvlists become JSON) are looked up in a Join
table of the batch that maps each distinct serialized value to its text."""
from __future__ import annotations

from schemas.otlp_values import SPAN_KIND_NAMES, STATUS_CODE_NAMES

# Nanoseconds beyond Int64 (past 2262-04-11) cannot be stored in DateTime64(9).
MAX_NANOS = (1 << 63) - 1
# A complex value's key in the Join table: its kind, then the hex of its serialized bytes
# (hex: raw protobuf is not UTF-8, and keys travel as Arrow strings).
ARRAY_PREFIX, KVLIST_PREFIX = "a", "k"


def quote(text: str) -> str:
    """A string literal; only for constants of the code, never for data (data is bound)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def string_array(items: tuple[str, ...] | list[str]) -> str:
    """An Array(String) literal of constants of the code."""
    return "[" + ", ".join(quote(item) for item in items) + "]::Array(String)"


def string_set(items: tuple[str, ...] | list[str]) -> str:
    """A set of constants of the code for ``x IN ...``: inside a lambda, IN builds its set
    once per query, where has() with an array literal copies the array for every element."""
    return "(" + ", ".join(quote(item) for item in items) + ("," if len(items) == 1 else "") + ")"


def hex_id(expr: str) -> str:
    """Lowercase hex of an ID's bytes; '' when they are empty or all zero (no ID)."""
    return f"if(replaceAll({expr}, '\\0', '') = '', '', lower(hex({expr})))"


def nanos(expr: str) -> str:
    """A UInt64 of nanoseconds as DateTime64(9) (the caller refuses values past MAX_NANOS)."""
    return f"fromUnixTimestamp64Nano(toInt64({expr}))"


def enum_name(expr: str, names: tuple[str, ...], default: str) -> str:
    """The name of an OTLP enum number; ``default`` for numbers OTLP does not define."""
    return f"if({expr} >= 0 AND {expr} < {len(names)}, {string_array(names)}[{expr} + 1], {quote(default)})"


def span_kind(expr: str) -> str:
    return enum_name(expr, SPAN_KIND_NAMES, "Unspecified")


def status_code(expr: str) -> str:
    return enum_name(expr, STATUS_CODE_NAMES, "Unset")


def double_text(expr: str) -> str:
    """A Float64 as ECMAScript's Number::toString writes it, as double_to_string does:
    the engine's shortest round-trip digits already match, except for the exponent sign
    and the spelling of NaN and the infinities (checked on 200k values, see the tests)."""
    return (f"multiIf(isNaN({expr}), 'NaN', isInfinite({expr}), if({expr} > 0, 'Infinity', '-Infinity'), "
            f"replaceRegexpOne(toString({expr}), 'e([0-9])', 'e+\\\\1'))")


def value_text(v: str, complex_table: str | None) -> str:
    """An AnyValue tuple as any_value_to_string writes it. Array and kvlist values are
    looked up in ``complex_table`` (None: the batch has none, so they cannot occur)."""
    if complex_table is None:
        array_text = kvlist_text = "''"
    else:
        array_text = f"joinGet('{complex_table}', 'Text', concat('{ARRAY_PREFIX}', hex({v}.array_value)))"
        kvlist_text = f"joinGet('{complex_table}', 'Text', concat('{KVLIST_PREFIX}', hex({v}.kvlist_value)))"
    return (f"multiIf({v}.value = 'string_value', {v}.string_value, "
            f"{v}.value = 'int_value', toString({v}.int_value), "
            f"{v}.value = 'bool_value', if({v}.bool_value, 'true', 'false'), "
            f"{v}.value = 'double_value', {double_text(f'{v}.double_value')}, "
            f"{v}.value = 'bytes_value', base64Encode({v}.bytes_value), "
            f"{v}.value = 'array_value', {array_text}, "
            f"{v}.value = 'kvlist_value', {kvlist_text}, '')")


def last_wins(attrs: str) -> str:
    """The KeyValues of ``attrs`` with a repeated key once, holding its last value (at the
    place of that last value). Built without lambdas that capture the array: ClickHouse
    copies a captured array for every element, which made 5,000 attributes cost 3 GiB."""
    keys = f"arrayMap(kv -> kv.1, {attrs})"
    last = (f"arrayReverse(arrayFilter((kv, seen) -> seen = 1, arrayReverse({attrs}), "
            f"arrayEnumerateUniq(arrayReverse({keys}))))")
    return f"if(length(arrayDistinct({keys})) = length({attrs}), {attrs}, {last})"


def attribute_map(attrs: str, complex_table: str | None) -> str:
    """KeyValues as Map(String, String), values by value_text, a repeated key's last value."""
    unique = last_wins(attrs)
    return (f"mapFromArrays(arrayMap(kv -> kv.1, {unique}), "
            f"arrayMap(kv -> {value_text('kv.2', complex_table)}, {unique}))")


def attribute_text(attrs: str, key: str, complex_table: str | None) -> str:
    """The text of attribute ``key`` (its last value; '' when absent)."""
    last = f"tupleElement(arrayLast(kv -> kv.1 = {quote(key)}, {attrs}), 2)"
    return f"if(has(arrayMap(kv -> kv.1, {attrs}), {quote(key)}), {value_text(last, complex_table)}, '')"


def complex_values(attrs: str) -> str:
    """The Join-table keys of the array and kvlist values among ``attrs`` (see value_text)."""
    return (f"arrayMap(kv -> if(kv.value.value = 'array_value', concat('{ARRAY_PREFIX}', hex(kv.value.array_value)), "
            f"concat('{KVLIST_PREFIX}', hex(kv.value.kvlist_value))), "
            f"arrayFilter(kv -> kv.value.value IN ('array_value', 'kvlist_value'), {attrs}))")


def texts_valid(*exprs: str) -> str:
    """True when every String expression is valid UTF-8 (what protobuf's parser demands of
    string fields: text that is not would break every JSON reader of the row)."""
    return " AND ".join(f"isValidUTF8({expr})" for expr in exprs) if exprs else "1"


def attributes_valid(attrs: str) -> str:
    """True when every key and string value of ``attrs`` is valid UTF-8."""
    return (f"arrayAll(kv -> isValidUTF8(kv.key) AND (kv.value.value != 'string_value' "
            f"OR isValidUTF8(kv.value.string_value)), {attrs})")


def typed_values(attrs: str) -> str:
    """KeyValues in a form Python can read whatever they hold: (key, kind, text, int, bool,
    double, hex of bytes/array/kvlist), as agents/ingest/logic.py's typed_value takes them."""
    return (f"CAST(arrayMap(kv -> (kv.key, toString(kv.value.value), kv.value.string_value, kv.value.int_value, "
            f"kv.value.bool_value, kv.value.double_value, hex(multiIf(kv.value.value = 'array_value', "
            f"kv.value.array_value, kv.value.value = 'kvlist_value', kv.value.kvlist_value, kv.value.bytes_value))), "
            f"{attrs}), 'Array(Tuple(key String, kind String, text String, int Int64, bool Bool, double Float64, "
            "raw String))')")
