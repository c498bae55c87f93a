"""Query and path parameters: every value checked here, a 400 naming the parameter otherwise."""
from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from agents.validation import IdPolicy, validate_correlation_id
from core.errors import OllyStackError

T = TypeVar("T")

MAX_VALUE_CHARS = 1024  # any single raw value longer than this is refused before parsing
NAME_MAX_CHARS = 256
TEXT_MAX_CHARS = 256
# OTel service, metric and operation names in practice: no quotes, no ';', no markup.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/@+\-]*")
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?")
_EPOCH_MS = re.compile(r"\d{1,13}")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?")
# Text values reuse the correlation-ID validator's injection checks (markup, script URLs,
# SQL, traversal) with any printable character allowed. The generated-ID prefix is a NUL,
# which the validator refuses earlier, so no text is mistaken for one of our IDs.
_TEXT_POLICY = IdPolicy(max_length=TEXT_MAX_CHARS, external_charset=r"[^\x00-\x1f\x7f-\x9f]",
                        generated_prefix="\x00")
_NAME_POLICY = IdPolicy(max_length=NAME_MAX_CHARS, external_charset=r"[A-Za-z0-9 ._:/@+\-]",
                        generated_prefix="\x00")

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
# DateTime64(9) holds 1900-01-01 .. 2262-04-11; the API accepts the Unix-epoch part of it.
MAX_TIMESTAMP_NS = 9_223_372_036 * NS_PER_S


class ParamError(OllyStackError):
    """A request parameter is missing, unknown or has a value that is not allowed (HTTP 400)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Defaults and caps for time ranges, pages and correlation lookups."""

    default_window_s: int = 3600
    max_window_s: int = 7 * 86400
    default_limit: int = 100
    max_limit: int = 1000
    max_offset: int = 10_000
    max_lookup_traces: int = 1000
    max_lookup_spans: int = 10_000
    max_lookup_logs: int = 10_000
    max_lookup_exemplars: int = 1000


@dataclass(frozen=True)
class TimeRange:
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def query_params(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    """The query string as one value per name; unknown, repeated or oversized values are refused."""
    out: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        shown = name if len(name) <= 64 and name.isprintable() else name[:64].encode("unicode_escape").decode()
        if name not in allowed:
            raise ParamError(shown, f"unknown parameter; allowed: {', '.join(sorted(allowed)) or 'none'}")
        if name in out:
            raise ParamError(name, "given more than once")
        if len(value) > MAX_VALUE_CHARS:
            raise ParamError(name, f"longer than {MAX_VALUE_CHARS} characters")
        out[name] = value
    return out


def correlation_id(value: str, name: str = "correlation_id") -> str:
    """A correlation ID the pipeline itself would accept."""
    if len(value) > MAX_VALUE_CHARS:
        raise ParamError(name, f"longer than {MAX_VALUE_CHARS} characters")
    verdict = validate_correlation_id(value)
    if not verdict.ok:
        raise ParamError(name, f"not a valid correlation ID ({verdict.reason})")
    return value


def trace_id(value: str, name: str = "trace_id") -> str:
    """32 hex digits, returned lowercase as stored; all zeros is no trace."""
    if not _TRACE_ID.fullmatch(value) or value.strip("0") == "":
        raise ParamError(name, "must be 32 hex digits (a W3C trace ID), not all zeros")
    return value.lower()


def name_value(value: str, name: str) -> str:
    """A service, operation or metric name: letters, digits, space and ``. _ : / @ + -``."""
    if not value or len(value) > NAME_MAX_CHARS or not _NAME.fullmatch(value):
        raise ParamError(name, f"must be 1-{NAME_MAX_CHARS} characters of letters, digits, space "
                               "and . _ : / @ + - (starting with a letter or digit)")
    verdict = validate_correlation_id(value, _NAME_POLICY)
    if not verdict.ok:
        raise ParamError(name, f"not allowed ({verdict.reason})")
    return value


def text_value(value: str, name: str) -> str:
    """Free text for a substring search: printable, no markup or SQL fragments."""
    verdict = validate_correlation_id(value, _TEXT_POLICY)
    if not verdict.ok:
        raise ParamError(name, f"not allowed ({verdict.reason})")
    return value


def choice(value: str, name: str, options: Mapping[str, T]) -> T:
    """One of ``options`` (case-insensitive keys)."""
    # An option may stand for None (status=all: no filter), so membership decides, not the value.
    key = value.lower()
    if key not in options:
        raise ParamError(name, f"must be one of {', '.join(options)}")
    return options[key]


def int_value(value: str, name: str, low: int, high: int) -> int:
    if not re.fullmatch(r"\d{1,12}", value):
        raise ParamError(name, f"must be a whole number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise ParamError(name, f"must be from {low} to {high}")
    return number


def float_value(value: str, name: str, low: float, high: float) -> float:
    if len(value) > 40 or not _NUMBER.fullmatch(value):
        raise ParamError(name, f"must be a number from {low:g} to {high:g}")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ParamError(name, f"must be from {low:g} to {high:g}")
    return number


def timestamp_ns(value: str, name: str) -> int:
    """ISO-8601 date-time (UTC unless it has an offset; up to 9 decimals) or Unix milliseconds."""
    if _EPOCH_MS.fullmatch(value):
        ns = int(value) * NS_PER_MS
    else:
        match = _ISO.fullmatch(value)
        if match is None:
            raise ParamError(name, "must be an ISO-8601 date-time such as 2026-01-31T12:00:00Z "
                                   "or Unix time in milliseconds")
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        if not (1970 <= year <= 2261 and 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60
                and 1 <= day <= calendar.monthrange(year, month)[1]):
            raise ParamError(name, "is not a date-time between 1970 and 2261")
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        seconds -= _offset_s(match.group(8))
        ns = seconds * NS_PER_S + int((match.group(7) or "0").ljust(9, "0"))
    if not 0 <= ns < MAX_TIMESTAMP_NS:
        raise ParamError(name, "is outside 1970-01-01 .. 2262-04-11")
    return ns


def _offset_s(zone: str | None) -> int:
    if not zone or zone == "Z":
        return 0
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        return 0
    sign = 1 if zone[0] == "+" else -1
    return sign * (hours * 3600 + minutes * 60)


def optional_time_range(params: Mapping[str, str], limits: Limits, now_ns: int) -> TimeRange | None:
    """``time_range``, or None (no time bound) when neither ``start`` nor ``end`` is given."""
    if "start" not in params and "end" not in params:
        return None
    return time_range(params, limits, now_ns)


def time_range(params: Mapping[str, str], limits: Limits, now_ns: int) -> TimeRange:
    """``start``/``end``: end defaults to now, start to end minus the default window."""
    end = timestamp_ns(params["end"], "end") if "end" in params else now_ns
    if "start" in params:
        start = timestamp_ns(params["start"], "start")
    else:
        start = max(0, end - limits.default_window_s * NS_PER_S)
    if start >= end:
        raise ParamError("start", "must be before end")
    if end - start > limits.max_window_s * NS_PER_S:
        raise ParamError("start", f"the range from start to end is longer than {limits.max_window_s} s")
    return TimeRange(start, end)


def page(params: Mapping[str, str], limits: Limits) -> Page:
    """``limit`` (1..max_limit) and ``offset`` (0..max_offset)."""
    limit = int_value(params["limit"], "limit", 1, limits.max_limit) if "limit" in params else limits.default_limit
    offset = int_value(params["offset"], "offset", 0, limits.max_offset) if "offset" in params else 0
    return Page(limit, offset)


def duration_ns(params: Mapping[str, str], name: str) -> int | None:
    """A duration given in milliseconds (decimals allowed), as nanoseconds."""
    if name not in params:
        return None
    return round(float_value(params[name], name, 0, 86_400_000_000) * NS_PER_MS)


# Attribute keys as OTel semantic conventions spell them (http.route, k8s.pod.name,
# messaging.destination/partition): nothing that could end a key early in a query string.
# Keys travel as bound parameters; the pattern keeps them readable in errors and cache keys.
ATTRIBUTE_KEY_MAX_CHARS = 128
ATTRIBUTE_KEY_RULE = (f"1-{ATTRIBUTE_KEY_MAX_CHARS} characters of letters, digits and . _ - / : @, "
                      "starting with a letter, digit or _")
ATTRIBUTE_KEY_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.\-/:@]*"
_ATTRIBUTE_KEY = re.compile(ATTRIBUTE_KEY_PATTERN)


def is_attribute_key(key: str) -> bool:
    """Whether ``key`` is a well-formed attribute key (ATTRIBUTE_KEY_RULE)."""
    return len(key) <= ATTRIBUTE_KEY_MAX_CHARS and _ATTRIBUTE_KEY.fullmatch(key) is not None


def attribute_keys(value: str, name: str, max_keys: int) -> tuple[str, ...]:
    """Comma-separated attribute keys, each once; at most ``max_keys``."""
    keys = tuple(part.strip() for part in value.split(","))
    if len(keys) > max_keys:
        raise ParamError(name, f"at most {max_keys} keys")
    for key in keys:
        if not is_attribute_key(key):
            raise ParamError(name, f"{key[:64]!r} is not an attribute key ({ATTRIBUTE_KEY_RULE})")
    if len(set(keys)) != len(keys):
        raise ParamError(name, "a key is given twice")
    return keys


def attribute_filters(value: str, name: str, max_filters: int) -> dict[str, str]:
    """Comma-separated ``key=value`` pairs; a value is ``text_value`` without a comma."""
    out: dict[str, str] = {}
    pairs = value.split(",")
    if len(pairs) > max_filters:
        raise ParamError(name, f"at most {max_filters} key=value pairs")
    for pair in pairs:
        key, sep, wanted = pair.partition("=")
        if not sep:
            raise ParamError(name, "must be key=value pairs separated by ','")
        (key,) = attribute_keys(key, name, 1)
        if key in out:
            raise ParamError(name, f"{key} is given twice")
        if not wanted:
            raise ParamError(name, f"{key}= has no value")
        out[key] = text_value(wanted, name)
    return out


MAX_TOKENS = 10
# ClickHouse's token index splits text at every ASCII character that is not a letter or a
# digit; other (non-ASCII) characters belong to tokens.
_TOKEN_SEPARATORS = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def body_tokens(value: str, name: str) -> tuple[str, ...]:
    """The distinct whole words of ``value`` as the log body's token index splits them,
    ASCII letters lowercased as the index's ``lower(Body)`` holds them (1..MAX_TOKENS)."""
    tokens = tuple(dict.fromkeys(t.translate(_ASCII_LOWER) for t in _TOKEN_SEPARATORS.split(value) if t))
    if not tokens:
        raise ParamError(name, "must hold at least one word (letters or digits)")
    if len(tokens) > MAX_TOKENS:
        raise ParamError(name, f"at most {MAX_TOKENS} words")
    return tokens

