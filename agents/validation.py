"""Validation of correlation IDs: length cap, injection patterns, charset and our own format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

__all__ = ["REASONS", "IdPolicy", "IdVerdict", "validate_correlation_id"]

# Every reason code validate_correlation_id can return, in the order the checks run.
REASONS: tuple[str, ...] = (
    "empty",
    "too_long",
    "nul_byte",
    "control_char",
    "markup",
    "script_url",
    "sql_injection",
    "path_traversal",
    "bad_generated_format",
    "charset",
)


@dataclass(frozen=True)
class IdPolicy:
    """What an acceptable correlation ID looks like.

    max_length: the longest accepted ID, in characters.
    external_charset: a regular expression matching exactly ONE allowed character of an ID
        we did not generate. The default allows ASCII letters, digits and ``. _ : - / = + @``,
        enough for UUIDs, ULIDs, W3C trace IDs and tenant-style IDs such as ``t/a:b=c+d@e``.
    generated_prefix: the prefix of the IDs OllyStack generates; an ID carrying it must match
        ``<prefix>[0-9a-z]{1,11}-[0-9a-f]{8}`` exactly.

    Raises ValueError naming the field when a value is unusable.
    """

    max_length: int = 128
    external_charset: str = r"[A-Za-z0-9._:\-/=+@]"
    generated_prefix: str = "olly-"

    def __post_init__(self) -> None:
        if self.max_length <= 0:
            raise ValueError("max_length: must be > 0")
        try:
            re.compile(self.external_charset)
        except re.error as exc:
            raise ValueError(f"external_charset: not a regular expression ({exc})") from exc
        if not self.generated_prefix:
            raise ValueError("generated_prefix: must not be empty")


@dataclass(frozen=True)
class IdVerdict:
    """The outcome of a validation: ok, or the stable reason code (one of REASONS)."""

    ok: bool
    reason: str | None = None


_OK = IdVerdict(ok=True, reason=None)

# C0 controls other than NUL, DEL and the C1 block: invisible, and terminal escape sequences
# (ESC [ 31 m) can rewrite what an operator sees in logs.
_CONTROL = re.compile(r"[\x01-\x1f\x7f-\x9f]")

# Numeric entities (&#60; &#x3c) need no trailing ';' in browsers, named ones are matched
# only with it so that an ID such as "a&b" is left to the charset check.
_MARKUP = re.compile(r"[<>]|&#|&[a-z][a-z0-9]{1,31};", re.IGNORECASE)

# Browsers drop whitespace and controls inside a scheme ("java\tscript:"), so the check runs
# on a compacted form. A scheme only counts at the start or after a character that cannot
# be part of a scheme name, so "metadata:1" or "x-data:1" stay legitimate.
_SCRIPT_GAPS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
_SCRIPT_URL = re.compile(r"(?:^|[^a-z0-9+.\-])(?:javascript|vbscript|data):")

_SQL_PUNCTUATION = re.compile(r"['\";]|--|/\*|\*/")
# Keywords alone are common words in IDs ("order-select-123"); only the pairs an injection
# needs are flagged, separated the way SQL accepts: whitespace, "+" (a URL-encoded space)
# or an inline comment.
_SEP = r"(?:\s|\+|/\*.*?\*/)+"
_SQL_PHRASES = re.compile(
    rf"""\b(?:
        union{_SEP}(?:all{_SEP}|distinct{_SEP})?select
      | select{_SEP}\S.*?{_SEP}from
      | insert{_SEP}into
      | delete{_SEP}from
      | drop{_SEP}(?:table|database|schema|view|index)
      | truncate{_SEP}table
      | alter{_SEP}table
      | update{_SEP}\w+{_SEP}set
      | (?:or|and){_SEP}(?P<left>\w+)(?:{_SEP})?=(?:{_SEP})?(?P=left)
      | waitfor{_SEP}delay
      | xp_cmdshell
    )\b
    | \b(?:pg_sleep|sleep|benchmark)\s*\(
    """,
    re.IGNORECASE | re.VERBOSE,
)

_TRAVERSAL = re.compile(r"\.\.[/\\]|[/\\]\.\.$|^\.\.$")
# Overlong UTF-8 encodings of '.', '/' and '\' that some decoders still accept; unquote
# turns them into U+FFFD, so they are matched before decoding.
_OVERLONG = ("%c0%ae", "%c0%af", "%c1%9c", "%c1%1c", "%e0%80%ae")

# A value can be encoded several times over (%252e -> %2e -> .); a few rounds cover what
# real decoders do, and the length cap keeps each round cheap.
_MAX_DECODE_ROUNDS = 3


@lru_cache(maxsize=32)
def _charset_pattern(one_char: str) -> re.Pattern[str]:
    return re.compile(f"(?:{one_char})*")


@lru_cache(maxsize=32)
def _generated_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"[0-9a-z]{1,11}-[0-9a-f]{8}")


def _decoded_forms(value: str) -> list[str]:
    forms = [value]
    current = value
    for _ in range(_MAX_DECODE_ROUNDS):
        if "%" not in current:
            break
        decoded = unquote(current)
        if decoded == current:
            break
        forms.append(decoded)
        current = decoded
    return forms


def _has_script_url(form: str) -> bool:
    return _SCRIPT_URL.search(_SCRIPT_GAPS.sub("", form).lower()) is not None


def _has_sql_injection(form: str) -> bool:
    return _SQL_PUNCTUATION.search(form) is not None or _SQL_PHRASES.search(form) is not None


def _has_traversal(form: str) -> bool:
    lowered = form.lower()
    if any(marker in lowered for marker in _OVERLONG):
        return True
    return _TRAVERSAL.search(lowered) is not None


def _injection_reason(value: str) -> str | None:
    forms = _decoded_forms(value)
    # The check kinds run in order over all forms, so "%3Cscript%3E" is "markup" even if a
    # later check would also have matched the raw text.
    checks = (
        ("markup", lambda form: _MARKUP.search(form) is not None),
        ("script_url", _has_script_url),
        ("sql_injection", _has_sql_injection),
        ("path_traversal", _has_traversal),
    )
    for reason, matches in checks:
        if any(matches(form) for form in forms):
            return reason
    return None


def validate_correlation_id(value: str, policy: IdPolicy = IdPolicy()) -> IdVerdict:
    """Check one correlation ID against the policy; never raises for any str input.

    Checks run in this order and the first failure wins: ``empty`` (empty or whitespace
    only), ``too_long`` (more than policy.max_length characters, checked before any pattern
    so oversized input stays cheap), ``nul_byte``, ``control_char`` (C0, DEL, C1),
    ``markup``, ``script_url``, ``sql_injection``, ``path_traversal`` (these four on the raw
    value and on its percent-decoded forms), then ``bad_generated_format`` for IDs starting
    with policy.generated_prefix (compared case-insensitively, so an upper-cased copy of one
    of our IDs cannot pass as an external one) or ``charset`` for all others.
    Returns IdVerdict(ok=True, reason=None) when every check passes.
    """
    if not value or not value.strip():
        return IdVerdict(ok=False, reason="empty")
    if len(value) > policy.max_length:
        return IdVerdict(ok=False, reason="too_long")
    if "\x00" in value:
        return IdVerdict(ok=False, reason="nul_byte")
    if _CONTROL.search(value):
        return IdVerdict(ok=False, reason="control_char")
    reason = _injection_reason(value)
    if reason is not None:
        return IdVerdict(ok=False, reason=reason)
    prefix = policy.generated_prefix
    if value[: len(prefix)].lower() == prefix.lower():
        if _generated_pattern(prefix).fullmatch(value) is None:
            return IdVerdict(ok=False, reason="bad_generated_format")
        return _OK
    if _charset_pattern(policy.external_charset).fullmatch(value) is None:
        return IdVerdict(ok=False, reason="charset")
    return _OK
