"""Tests for agents.validation: hostile and legitimate correlation IDs."""

from __future__ import annotations

import pytest

from agents.validation import REASONS, IdPolicy, IdVerdict, validate_correlation_id

HOSTILE = [
    pytest.param("<script>alert(1)</script>", "markup", id="script-tag"),
    pytest.param("javascript:alert(1)", "script_url", id="javascript-url"),
    pytest.param("abc\x00def", "nul_byte", id="nul-byte"),
    pytest.param("' OR 1=1 --", "sql_injection", id="sql-or-tautology"),
    pytest.param("1; DROP TABLE users", "sql_injection", id="sql-drop-table"),
    pytest.param("../../etc/passwd", "path_traversal", id="dot-dot-slash"),
    pytest.param("%2e%2e%2fetc", "path_traversal", id="percent-encoded-traversal"),
    pytest.param("a" * 10_240, "too_long", id="10kB"),
    pytest.param("\x1b[31m", "control_char", id="ansi-escape"),
    pytest.param("olly-XYZ-zz", "bad_generated_format", id="bad-generated"),
]

VALID = [
    pytest.param("req-123", id="plain"),
    pytest.param("4bf92f3577b34da6a3ce929d0e0e4736", id="trace-id-hex"),
    pytest.param("order-select-123", id="sql-keyword-in-id"),
    pytest.param("olly-lz3k1a2b-1a2b3c4d", id="generated"),
    pytest.param("tenant/a:b=c+d@e", id="full-charset"),
    pytest.param("550e8400-e29b-41d4-a716-446655440000", id="uuid"),
    pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAV", id="ulid"),
    pytest.param("metadata:42", id="data-inside-word"),
    pytest.param("x-data:1", id="data-after-scheme-char"),
    pytest.param("update-user-set-1", id="update-set-without-spaces"),
    pytest.param("a" * 128, id="exactly-max-length"),
]


@pytest.mark.parametrize(("value", "reason"), HOSTILE)
def test_hostile_ids_are_rejected_with_reason(value: str, reason: str) -> None:
    assert validate_correlation_id(value) == IdVerdict(ok=False, reason=reason)


@pytest.mark.parametrize("value", VALID)
def test_valid_ids_are_accepted(value: str) -> None:
    assert validate_correlation_id(value) == IdVerdict(ok=True, reason=None)


MORE_REJECTED = [
    pytest.param("", "empty", id="empty"),
    pytest.param("   ", "empty", id="whitespace-only"),
    pytest.param("a" * 129, "too_long", id="one-over-max"),
    pytest.param("<script>" + "a" * 200, "too_long", id="length-before-markup"),
    pytest.param("a\x00<b>", "nul_byte", id="nul-before-markup"),
    pytest.param("a\x7fb", "control_char", id="del"),
    pytest.param("a\x85b", "control_char", id="c1-next-line"),
    pytest.param("a\tb", "control_char", id="tab"),
    pytest.param("&lt;img&gt;", "markup", id="named-entity"),
    pytest.param("x&#60;y", "markup", id="numeric-entity"),
    pytest.param("%3Cscript%3E", "markup", id="percent-encoded-markup"),
    pytest.param("%253Cb%253E", "markup", id="double-percent-encoded-markup"),
    pytest.param("JavaScript:alert(1)", "script_url", id="mixed-case-scheme"),
    pytest.param("java%0ascript:alert(1)", "script_url", id="percent-newline-in-scheme"),
    pytest.param("java script:x", "script_url", id="space-in-scheme"),
    pytest.param("vbscript:msgbox", "script_url", id="vbscript"),
    pytest.param("data:text/html,x", "script_url", id="data-url"),
    pytest.param("next=javascript:x", "script_url", id="scheme-after-equals"),
    pytest.param("it's", "sql_injection", id="single-quote"),
    pytest.param('a"b', "sql_injection", id="double-quote"),
    pytest.param("id;--", "sql_injection", id="semicolon-comment"),
    pytest.param("a--b", "sql_injection", id="double-dash"),
    pytest.param("a/*x*/b", "sql_injection", id="block-comment"),
    pytest.param("1 UNION SELECT password FROM users", "sql_injection", id="union-select"),
    pytest.param("1+union+all+select+1", "sql_injection", id="union-select-plus-separated"),
    pytest.param("1/**/UNION/**/SELECT/**/2", "sql_injection", id="union-select-comment-separated"),
    pytest.param("x OR 1=1", "sql_injection", id="or-tautology-unquoted"),
    pytest.param("x%27%20OR%201=1", "sql_injection", id="percent-encoded-quote"),
    pytest.param("drop table x", "sql_injection", id="drop-table-lower-case"),
    pytest.param("1 and sleep(5)", "sql_injection", id="sleep-call"),
    pytest.param("..\\..\\windows", "path_traversal", id="dot-dot-backslash"),
    pytest.param("%2E%2E%2Fetc", "path_traversal", id="upper-case-percent-encoding"),
    pytest.param("..%2fetc", "path_traversal", id="mixed-encoding"),
    pytest.param("%252e%252e%252fetc", "path_traversal", id="double-encoded"),
    pytest.param("a/..", "path_traversal", id="trailing-parent"),
    pytest.param("..", "path_traversal", id="parent-only"),
    pytest.param("%c0%ae%c0%ae/etc", "path_traversal", id="overlong-utf8"),
    pytest.param("olly-", "bad_generated_format", id="prefix-only"),
    pytest.param("olly-abc-1234567", "bad_generated_format", id="seven-hex"),
    pytest.param("olly-abc-1234567g", "bad_generated_format", id="non-hex"),
    pytest.param("olly-abcdefghijkl-12345678", "bad_generated_format", id="twelve-base36"),
    pytest.param("OLLY-abc-12345678", "bad_generated_format", id="upper-case-prefix"),
    pytest.param("olly-abc-12345678-x", "bad_generated_format", id="trailing-part"),
    pytest.param("hello world", "charset", id="space"),
    pytest.param("caf\u00e9", "charset", id="non-ascii"),
    pytest.param("a%20b", "charset", id="percent-sign"),
    pytest.param("a&b", "charset", id="ampersand"),
]


@pytest.mark.parametrize(("value", "reason"), MORE_REJECTED)
def test_rejection_reasons(value: str, reason: str) -> None:
    verdict = validate_correlation_id(value)
    assert verdict == IdVerdict(ok=False, reason=reason)
    assert verdict.reason in REASONS


POLICIES = [
    pytest.param(IdPolicy(max_length=4), "abcd", True, id="custom-length-at-max"),
    pytest.param(IdPolicy(max_length=4), "abcde", False, id="custom-length-over-max"),
    pytest.param(IdPolicy(external_charset=r"[0-9]"), "123", True, id="digits-only-charset"),
    pytest.param(IdPolicy(external_charset=r"[0-9]"), "12a", False, id="digits-charset-letter"),
    pytest.param(IdPolicy(generated_prefix="acme-"), "acme-abc-12345678", True, id="custom-prefix"),
    pytest.param(IdPolicy(generated_prefix="acme-"), "acme-abc", False, id="custom-prefix-bad"),
]


@pytest.mark.parametrize(("policy", "value", "ok"), POLICIES)
def test_policy_is_honoured(policy: IdPolicy, value: str, ok: bool) -> None:
    assert validate_correlation_id(value, policy).ok is ok


BAD_POLICIES = [
    pytest.param({"max_length": 0}, "max_length", id="zero-length"),
    pytest.param({"external_charset": "[a-"}, "external_charset", id="broken-regex"),
    pytest.param({"generated_prefix": ""}, "generated_prefix", id="empty-prefix"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD_POLICIES)
def test_bad_policy_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        IdPolicy(**kwargs)  # type: ignore[arg-type]
