"""The ``tags`` condition syntax and the body-word splitting of log search."""
from __future__ import annotations

import dataclasses

import pytest

from api.conditions import MAX_CONDITIONS, Condition, number_texts, parse_conditions
from api.params import ParamError, body_tokens

C = Condition


@pytest.mark.parametrize(("text", "expected"), [
    ("http.route=/orders", [C("either", "http.route", "=", "/orders")]),
    ("span.http.route=/orders", [C("record", "http.route", "=", "/orders")]),
    ("resource.service.name=checkout", [C("resource", "service.name", "=", "checkout")]),
    ("customer.id=42", [C("either", "customer.id", "=", "42", 42.0)]),
    ('customer.id="42"', [C("either", "customer.id", "=", "42")]),
    ("a>=-1.5e3 b<.5 c!=x d<=7 e>0", [C("either", "a", ">=", "-1.5e3", -1500.0), C("either", "b", "<", ".5", 0.5),
                                       C("either", "c", "!=", "x"), C("either", "d", "<=", "7", 7.0),
                                       C("either", "e", ">", "0", 0.0)]),
    ('span.a = "x y" && resource.b != 2', [C("record", "a", "=", "x y"), C("resource", "b", "!=", "2", 2.0)]),
    ("a=1&&b=2", [C("either", "a", "=", "1", 1.0), C("either", "b", "=", "2", 2.0)]),
    ('  q="a=b" ', [C("either", "q", "=", "a=b")]),
    (r'q="say \"hi\" \\o/"', [C("either", "q", "=", 'say "hi" \\o/')]),
    ('q=""', [C("either", "q", "=", "")]),
    ("""q="'; DROP TABLE x;--" r=';--""", [C("either", "q", "=", "'; DROP TABLE x;--"), C("either", "r", "=", "';--")]),
], ids=["unscoped", "span", "resource", "number", "quoted-number-is-text", "operators", "spaced-and",
        "and-without-spaces", "quoted-equals", "escapes", "empty", "sql-is-a-value"])
def test_conditions_parse(text: str, expected: list[Condition]) -> None:
    parsed = parse_conditions(text, "tags", "span")
    assert [dataclasses.replace(c, texts=()) for c in parsed] == expected
    assert all(bool(c.texts) == (c.number is not None) for c in parsed)


@pytest.mark.parametrize(("literal", "expected"), [
    ("42", ("42",)), ("42.0", ("42",)), ("4.2e1", ("42",)), ("-1.5", ("-1.5",)), (".5", ("0.5",)),
    ("1e21", ("1e+21", "1000000000000000000000")), ("-0", ("-0", "0")),
    ("9007199254740993", ("9007199254740992", "9007199254740993")),
], ids=["int", "whole-decimal", "exponent", "negative", "leading-dot", "exponent-form", "negative-zero",
        "past-2**53"])
def test_numbers_match_the_forms_the_pipeline_stores(literal: str, expected: tuple[str, ...]) -> None:
    assert number_texts(literal, float(literal)) == expected


def test_the_log_scope_is_log_not_span() -> None:
    assert parse_conditions("log.a=1 span.b=2", "tags", "log") == (
        C("record", "a", "=", "1", 1.0, ("1",)), C("either", "span.b", "=", "2", 2.0, ("2",)))


@pytest.mark.parametrize(("text", "message"), [
    ("", "at least one condition"),
    ("   ", "at least one condition"),
    ("route", "condition 1: expected key=value"),
    ("a=1 b", "condition 2: expected key=value"),
    ("a=", "no value after ="),
    ("a==1", "must be quoted"),
    ("a=1 || b=2", "condition 2: expected key=value"),
    ('a="x"b=1', "condition 2: separate conditions"),
    ('a="x', "condition 1: the quoted value has no closing"),
    (r'a="\n"', "only \\\" and \\\\"),
    ("span.=1", "the attribute key"),
    ("a'b=1", "the attribute key"),
    ("a\\b=1", "the attribute key"),
    ("ключ=1", "the attribute key"),
    (".a=1", "the attribute key"),
    ("k" * 129 + "=1", "the attribute key"),
    ("a=" + "v" * 257, "longer than 256"),
    ('a="\x01"', "control characters"),
    ("a=1e999", "out of range"),
    (" ".join(f"k{i}=1" for i in range(MAX_CONDITIONS + 1)), f"at most {MAX_CONDITIONS} conditions"),
], ids=["empty", "blank", "no-operator", "second-no-operator", "no-value", "double-equals", "or", "no-separator",
        "unclosed-quote", "unknown-escape", "prefix-only", "quote-in-key", "backslash-in-key", "non-ascii-key",
        "leading-dot", "long-key", "long-value", "control-character", "huge-number", "too-many"])
def test_bad_conditions_are_refused_naming_the_parameter(text: str, message: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_conditions(text, "tags", "span")
    assert caught.value.parameter == "tags" and message in caught.value.message


def test_unicode_values_are_kept() -> None:
    assert parse_conditions('city="Zürich 東京"', "tags", "span") == (C("either", "city", "=", "Zürich 東京"),)


@pytest.mark.parametrize(("text", "expected"), [
    ("card declined", ("card", "declined")),
    ("Card,DECLINED card", ("card", "declined")),
    ("order-7f3a9c", ("order", "7f3a9c")),
    ("snake_case", ("snake", "case")),
    ("Ünïcode état", ("Ünïcode", "état")),  # the index lowercases ASCII letters only
], ids=["words", "case-and-duplicates", "dash-splits", "underscore-splits", "non-ascii-kept"])
def test_body_tokens_split_as_the_index_does(text: str, expected: tuple[str, ...]) -> None:
    assert body_tokens(text, "tokens") == expected


@pytest.mark.parametrize("text", ["", " -- ", "'\";", " ".join(f"w{i}" for i in range(11))],
                         ids=["empty", "separators", "quotes", "too-many"])
def test_bad_body_tokens_are_refused(text: str) -> None:
    with pytest.raises(ParamError) as caught:
        body_tokens(text, "tokens")
    assert caught.value.parameter == "tokens"
