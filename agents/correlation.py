"""Where a span's or log's correlation ID comes from, and how a missing or bad one is generated."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote

from agents.validation import IdPolicy, validate_correlation_id

__all__ = [
    "REJECTED_REASON_ATTRIBUTE",
    "REJECTED_VALUE_ATTRIBUTE",
    "SOURCE_PRIORITY",
    "Candidate",
    "CorrelationConfig",
    "Rejection",
    "Resolution",
    "Source",
    "base36",
    "clue_keys",
    "check_candidate",
    "find_correlation_id",
    "generate_correlation_id",
    "generated_id",
    "generated_id_sql",
    "parse_baggage",
    "resolve_correlation_id",
]

Source = Literal["resource", "attribute", "header", "baggage", "body", "trace", "generated"]
# Lower wins. A trace's ID only ever moves to a better source, so children stored with a
# generated ID are re-linked (at query time) when the root brings the caller's ID.
SOURCE_PRIORITY: Mapping[str, int] = {
    "resource": 0, "attribute": 1, "header": 2, "baggage": 3, "body": 4, "trace": 5, "generated": 6,
}

_HEADER_ATTRIBUTE_PREFIX = "http.request.header."
_BAGGAGE_KEYS = ("baggage", "http.request.header.baggage")
# The W3C baggage limit on list members; parsing stops there so a hostile header cannot
# keep the worker busy.
_BAGGAGE_MAX_MEMBERS = 180
_REJECTED_MAX_CHARS = 256
# Where a record keeps the ID it arrived with when that ID was rejected, and why.
REJECTED_REASON_ATTRIBUTE = "ollystack.correlation_id.rejected_reason"
REJECTED_VALUE_ATTRIBUTE = "ollystack.correlation_id.rejected_value"
_BASE36_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# The generated format allows 1-11 base36 digits for the anchor time in milliseconds.
_MAX_ANCHOR_MS = 36**11 - 1


@dataclass(frozen=True)
class CorrelationConfig:
    """Where to look for an incoming correlation ID, and the policy it must satisfy."""

    attribute_keys: tuple[str, ...] = ("correlation_id",)
    header_names: tuple[str, ...] = ("X-Correlation-ID", "X-Request-ID")
    baggage_member: str = "correlation_id"
    body_keys: tuple[str, ...] = ("correlation_id", "correlationId", "request_id", "requestId")
    policy: IdPolicy = field(default_factory=IdPolicy)


@dataclass(frozen=True)
class Candidate:
    """An ID found on a record, not yet validated, and where it was found."""

    value: str
    source: Source


@dataclass(frozen=True)
class Rejection:
    """Why a found ID was not used, and the value as it may be stored (escaped, bounded)."""

    value: str
    reason: str


@dataclass(frozen=True)
class Resolution:
    """The ID a record carries, where it came from, and what was rejected on the way."""

    correlation_id: str
    source: str
    rejected_value: str | None = None
    rejected_reason: str | None = None


def _text(value: object) -> str | None:
    # bool is an int subclass, but True is no one's request ID.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _first_text(value: object) -> str | None:
    # Captured headers (http.request.header.*) are string arrays: one entry per header line.
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str) and item.strip():
                return item
        return None
    return _text(value)


def _attribute(attrs: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            found = _text(value)
            if found is not None:
                return found
    return None


@lru_cache(maxsize=64)
def _header_keys(names: tuple[str, ...]) -> tuple[str, ...]:
    # Every spelling a header can arrive under, in precedence order; computed once per
    # config because this runs for every span and log record.
    keys: list[str] = []
    for name in names:
        lower = name.lower()
        for key in (name, lower, _HEADER_ATTRIBUTE_PREFIX + lower):
            if key not in keys:
                keys.append(key)
    return tuple(keys)


def _header(attrs: Mapping[str, object], names: tuple[str, ...]) -> str | None:
    for key in _header_keys(names):
        value = attrs.get(key)
        if value is not None:
            found = _first_text(value)
            if found is not None:
                return found
    return None


def clue_keys(config: CorrelationConfig) -> tuple[str, ...]:
    """Every attribute key find_correlation_id reads under ``config``: a record without any
    of them (and without a JSON or kvlist body) has no candidate."""
    keys = (*config.attribute_keys, *_header_keys(config.header_names), *_BAGGAGE_KEYS)
    return tuple(dict.fromkeys(keys))


def parse_baggage(header: str) -> dict[str, str]:
    """Parse a W3C ``baggage`` header value into {key: percent-decoded value}.

    Members are ``key=value`` separated by commas, each optionally followed by
    ``;properties`` (dropped). Whitespace around keys and values is trimmed, members without
    ``=`` or with an empty key are skipped, the first occurrence of a key wins, and parsing
    stops after 180 members (the W3C limit). Never raises.
    """
    members: dict[str, str] = {}
    for count, member in enumerate(header.split(",")):
        if count >= _BAGGAGE_MAX_MEMBERS:
            break
        key_value = member.split(";", 1)[0]
        key, sep, value = key_value.partition("=")
        key = key.strip()
        if not sep or not key or key in members:
            continue
        members[key] = unquote(value.strip())
    return members


def _baggage(attrs: Mapping[str, object], member: str) -> str | None:
    for key in _BAGGAGE_KEYS:
        raw = attrs.get(key)
        if isinstance(raw, (list, tuple)):
            # Several baggage header lines combine like one comma-joined line (RFC 9110).
            raw = ",".join(item for item in raw if isinstance(item, str))
        if not isinstance(raw, str) or not raw.strip():
            continue
        found = _text(parse_baggage(raw).get(member))
        if found is not None:
            return found
    return None


def _body(body: object, keys: tuple[str, ...]) -> str | None:
    if isinstance(body, str):
        stripped = body.strip()
        if not stripped.startswith("{"):
            return None
        try:
            body = json.loads(stripped)
        except (ValueError, RecursionError):
            return None
    if not isinstance(body, Mapping):
        return None
    for key in keys:
        found = _text(body.get(key))
        if found is not None:
            return found
    return None


def find_correlation_id(
    resource_attrs: Mapping[str, object],
    record_attrs: Mapping[str, object],
    body: object = None,
    known_for_trace: str | None = None,
    config: CorrelationConfig = CorrelationConfig(),
) -> Candidate | None:
    """Return the first correlation ID candidate found on a record, or None.

    Sources in precedence order: resource attribute (config.attribute_keys), record
    attribute (same keys), header attributes (config.header_names as ``H``, ``h`` or
    ``http.request.header.h``; record then resource), the W3C baggage member
    (record then resource), a JSON-object log body (config.body_keys, top level only), then
    ``known_for_trace``. Integers are turned into strings; empty or whitespace-only strings,
    booleans and other types are skipped. The value is not validated here; never raises.
    """
    found = _attribute(resource_attrs, config.attribute_keys)
    if found is not None:
        return Candidate(found, "resource")
    found = _attribute(record_attrs, config.attribute_keys)
    if found is not None:
        return Candidate(found, "attribute")
    for attrs in (record_attrs, resource_attrs):
        found = _header(attrs, config.header_names)
        if found is not None:
            return Candidate(found, "header")
    for attrs in (record_attrs, resource_attrs):
        found = _baggage(attrs, config.baggage_member)
        if found is not None:
            return Candidate(found, "baggage")
    found = _body(body, config.body_keys)
    if found is not None:
        return Candidate(found, "body")
    if known_for_trace:
        return Candidate(known_for_trace, "trace")
    return None


@lru_cache(maxsize=65536)
def base36(n: int) -> str:
    """Return n in lower-case base 36 ("0" for 0); raises ValueError when n < 0."""
    if n < 0:
        raise ValueError("n: must be >= 0")
    if n == 0:
        return "0"
    digits: list[str] = []
    while n:
        n, rest = divmod(n, 36)
        digits.append(_BASE36_DIGITS[rest])
    return "".join(reversed(digits))


def generate_correlation_id(trace_id_hex: str, anchor_time_ns: int) -> str:
    """Return ``olly-{base36 anchor ms}-{8 hex}``, a pure function of its two arguments.

    The 8 hex digits are the first four bytes of SHA-256 over the UTF-8 bytes of
    ``trace_id_hex`` with ASCII letters lower-cased; any string is hashed as given, so for
    records without a trace (empty or all-zero trace ID) the caller passes a stable record
    identity instead. The anchor is the event time of the first record seen of the trace,
    so every span and log of the trace gets the same ID across batches, workers, restarts
    and replays. ``generated_id_sql`` computes the same ID in the engine (a hash and a
    lower-casing that ClickHouse has too, which is why not blake2b or str.lower).
    Raises ValueError when anchor_time_ns is negative or beyond the 11-digit format.
    """
    anchor_ms = anchor_time_ns // 1_000_000
    if anchor_time_ns < 0 or anchor_ms > _MAX_ANCHOR_MS:
        raise ValueError(f"anchor_time_ns: must be in [0, {_MAX_ANCHOR_MS * 1_000_000}]")
    digest = hashlib.sha256(trace_id_hex.encode("utf-8").lower()).hexdigest()[:8]
    return f"olly-{base36(anchor_ms)}-{digest}"


def generated_id_sql(identity: str, anchor_ns: str) -> str:
    """``generated_id`` as a ClickHouse expression over a String ``identity`` and a UInt64
    ``anchor_ns`` (both SQL expressions). Every UInt64 of nanoseconds is a millisecond
    count within the format's 11 base36 digits, so no clamping is needed."""
    ms = f"intDiv(toUInt64({anchor_ns}), 1000000)"
    digits = (f"arrayStringConcat(arrayMap(p -> substring('{_BASE36_DIGITS}', "
              f"toUInt8(intDiv({ms}, p) % 36) + 1, 1), {[36**i for i in range(10, -1, -1)]}))")
    return (f"concat('olly-', replaceRegexpOne({digits}, '^0+(.)', '\\\\1'), '-', "
            f"lower(hex(substring(SHA256(lower({identity})), 1, 4))))")


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    # Controls, format characters (bidi overrides, zero-width) and lone surrogates would
    # either hide text from an operator or fail UTF-8 encoding when stored.
    if unicodedata.category(char) in ("Cc", "Cf", "Cs"):
        code = ord(char)
        if code <= 0xFF:
            return f"\\x{code:02x}"
        if code <= 0xFFFF:
            return f"\\u{code:04x}"
        return f"\\U{code:08x}"
    return char


def _safe_rejected(value: str) -> str:
    # Escapes are never cut in half: the result is at most 256 characters in total.
    out: list[str] = []
    length = 0
    for char in value[:_REJECTED_MAX_CHARS]:
        escaped = _escape_char(char)
        if length + len(escaped) > _REJECTED_MAX_CHARS:
            break
        out.append(escaped)
        length += len(escaped)
    return "".join(out)


def generated_id(identity: str, anchor_time_ns: int) -> str:
    """``generate_correlation_id`` with the anchor clamped into the format's range: a record
    is never dropped for its timestamp. Never raises."""
    return generate_correlation_id(identity, min(max(anchor_time_ns, 0), _MAX_ANCHOR_MS * 1_000_000))


def check_candidate(candidate: Candidate, config: CorrelationConfig = CorrelationConfig()) -> Rejection | None:
    """None when the candidate may be used as found; else why not, with the value made safe
    to store as an attribute (at most 256 characters, controls and backslashes escaped)."""
    verdict = validate_correlation_id(candidate.value, config.policy)
    if verdict.ok:
        return None
    return Rejection(_safe_rejected(candidate.value), str(verdict.reason))


def resolve_correlation_id(
    candidate: Candidate | None,
    trace_id_hex: str,
    anchor_time_ns: int,
    config: CorrelationConfig = CorrelationConfig(),
) -> Resolution:
    """Return the ID a record carries: the candidate when valid, else a generated one.

    A valid candidate keeps its value and source. A missing one yields a generated ID
    (source "generated"). An invalid one also yields a generated ID, and records the
    rejected value and reason (see check_candidate). Never raises."""
    rejection = check_candidate(candidate, config) if candidate is not None else None
    if candidate is not None and rejection is None:
        return Resolution(candidate.value, candidate.source)
    generated = generated_id(trace_id_hex, anchor_time_ns)
    if rejection is None:
        return Resolution(generated, "generated")
    return Resolution(generated, "generated", rejection.value, rejection.reason)
