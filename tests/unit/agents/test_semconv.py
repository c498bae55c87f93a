"""Tests for agents.semconv: attribute renames, SQL literal masking, severities."""

from __future__ import annotations

import pyarrow as pa
import pytest

from agents.semconv import (
    DEPRECATED_STATEMENT,
    PLANS_COLUMNS,
    RENAMES,
    mask_sql_literals,
    normalize_attributes,
    normalize_severity,
    plans_table,
    rename_plan,
    renamed_attributes_sql,
)
from sinks.engine import Engine, staging_name

# http.target is the one row that yields two keys; it has its own rows below.
SIMPLE_RENAMES = [
    pytest.param(old, new, id=old) for old, new in RENAMES.items() if old != "http.target"
]


@pytest.mark.parametrize(("old", "new"), SIMPLE_RENAMES)
def test_every_table_row_renames(old: str, new: str) -> None:
    attrs, rewritten = normalize_attributes({old: "v1"})
    assert attrs == {new: "v1"}
    assert rewritten == (old,)


NORMALIZE = [
    pytest.param({"service.name": "a"}, {"service.name": "a"}, (), id="nothing-deprecated"),
    pytest.param(
        {"http.method": "GET", "http.status_code": 200},
        {"http.request.method": "GET", "http.response.status_code": 200},
        ("http.method", "http.status_code"),
        id="values-unchanged",
    ),
    pytest.param(
        {"http.target": "/users/1?debug=1&x=2"},
        {"url.path": "/users/1", "url.query": "debug=1&x=2"},
        ("http.target",),
        id="target-split",
    ),
    pytest.param({"http.target": "/a"}, {"url.path": "/a"}, ("http.target",), id="target-no-query"),
    pytest.param({"http.target": "/a?"}, {"url.path": "/a"}, ("http.target",), id="empty-query"),
    pytest.param(
        {"http.target": "/a?b?c"},
        {"url.path": "/a", "url.query": "b?c"},
        ("http.target",),
        id="target-split-at-first-question-mark",
    ),
    pytest.param(
        {"http.target": "/a?b", "url.path": "/stable"},
        {"url.path": "/stable"},
        ("http.target",),
        id="stable-path-drops-target-whole",
    ),
    pytest.param({"http.target": 7}, {"url.path": 7}, ("http.target",), id="target-not-a-string"),
    pytest.param(
        {"db.statement": "SELECT * FROM t1 WHERE name = 'bob' AND age > 30"},
        {"db.query.text": "SELECT * FROM t1 WHERE name = ? AND age > ?"},
        ("db.statement",),
        id="statement-masked",
    ),
    pytest.param(
        {"http.method": "POST", "http.request.method": "GET"},
        {"http.request.method": "GET"},
        ("http.method",),
        id="stable-wins",
    ),
    pytest.param(
        {"net.host.name": "host", "net.peer.name": "peer"},
        {"server.address": "peer"},
        ("net.peer.name", "net.host.name"),
        id="table-order-decides-shared-target",
    ),
    pytest.param(
        {"net.host.name": "host", "server.address": "set"},
        {"server.address": "set"},
        ("net.host.name",),
        id="host-name-only-if-unset",
    ),
    pytest.param(
        {"http.flavor": "1.1", "net.protocol.version": "2"},
        {"network.protocol.version": "1.1"},
        ("http.flavor", "net.protocol.version"),
        id="two-deprecated-one-target",
    ),
]


@pytest.mark.parametrize(("attrs", "expected", "rewritten"), NORMALIZE)
def test_normalize_attributes(
    attrs: dict[str, object], expected: dict[str, object], rewritten: tuple[str, ...]
) -> None:
    before = dict(attrs)
    assert normalize_attributes(attrs) == (expected, rewritten)
    assert attrs == before


MASK = [
    pytest.param("SELECT 1", "SELECT ?", id="integer"),
    pytest.param("WHERE a = 'x'", "WHERE a = ?", id="string"),
    pytest.param("WHERE a = 'it''s'", "WHERE a = ?", id="doubled-quote-escape"),
    pytest.param("WHERE a = ''", "WHERE a = ?", id="empty-string"),
    pytest.param("VALUES ('a', 'b', 3)", "VALUES (?, ?, ?)", id="several"),
    pytest.param("WHERE x = 1.5e-3 OR y = .5", "WHERE x = ? OR y = ?", id="decimal-exponent"),
    pytest.param("WHERE x = 0xFF", "WHERE x = ?", id="hex"),
    pytest.param("WHERE x = -42", "WHERE x = -?", id="negative"),
    pytest.param("WHERE n = N'name'", "WHERE n = ?", id="prefixed-string"),
    pytest.param("SELECT col1 FROM table1 t2", "SELECT col1 FROM table1 t2", id="identifiers-kept"),
    pytest.param("SELECT t1.c2 FROM s3.t1", "SELECT t1.c2 FROM s3.t1", id="qualified-names-kept"),
    pytest.param('SELECT "col 2" FROM "it\'s"', 'SELECT "col 2" FROM "it\'s"', id="quoted-idents"),
    pytest.param("SELECT `a1` FROM b", "SELECT `a1` FROM b", id="backtick-identifier"),
    pytest.param("WHERE a = ? OR b = $1", "WHERE a = ? OR b = $1", id="placeholders"),
    pytest.param("WHERE c = :p2", "WHERE c = :p2", id="named-placeholder"),
    pytest.param("WHERE a = 'unterminated 123", "WHERE a = ?", id="unterminated-string"),
    pytest.param("WHERE a = 'x\ny'", "WHERE a = ?", id="multiline-string"),
    pytest.param("", "", id="empty"),
]


@pytest.mark.parametrize(("sql", "expected"), MASK)
def test_mask_sql_literals(sql: str, expected: str) -> None:
    assert mask_sql_literals(sql) == expected


SEVERITY = [
    pytest.param(0, "", (0, ""), id="unset-stays-unset"),
    pytest.param(1, "", (1, "TRACE"), id="1-trace"),
    pytest.param(4, "", (4, "TRACE"), id="4-trace"),
    pytest.param(5, "", (5, "DEBUG"), id="5-debug"),
    pytest.param(8, "", (8, "DEBUG"), id="8-debug"),
    pytest.param(9, "", (9, "INFO"), id="9-info"),
    pytest.param(12, "", (12, "INFO"), id="12-info"),
    pytest.param(13, "", (13, "WARN"), id="13-warn"),
    pytest.param(16, "", (16, "WARN"), id="16-warn"),
    pytest.param(17, "", (17, "ERROR"), id="17-error"),
    pytest.param(20, "", (20, "ERROR"), id="20-error"),
    pytest.param(21, "", (21, "FATAL"), id="21-fatal"),
    pytest.param(24, "", (24, "FATAL"), id="24-fatal"),
    pytest.param(0, "info", (9, "INFO"), id="text-lower-case"),
    pytest.param(0, " Warning ", (13, "WARN"), id="warning-padded"),
    pytest.param(0, "ERR", (17, "ERROR"), id="err"),
    pytest.param(0, "critical", (21, "FATAL"), id="critical"),
    pytest.param(0, "EMERG", (21, "FATAL"), id="emerg"),
    pytest.param(0, "notice", (9, "INFO"), id="notice"),
    pytest.param(0, "fine", (5, "DEBUG"), id="java-fine"),
    pytest.param(0, "INFO2", (10, "INFO"), id="otel-short-name-step"),
    pytest.param(0, "banana", (0, "banana"), id="unknown-text-kept"),
    pytest.param(17, "info", (17, "ERROR"), id="number-wins"),
    pytest.param(13, "warning", (13, "WARN"), id="canonical-text"),
    pytest.param(99, "debug", (5, "DEBUG"), id="out-of-range-number-uses-text"),
    pytest.param(-1, "", (0, ""), id="negative-number-no-text"),
]


@pytest.mark.parametrize(("number", "text", "expected"), SEVERITY)
def test_normalize_severity(number: int, text: str, expected: tuple[int, str]) -> None:
    assert normalize_severity(number, text) == expected


@pytest.mark.parametrize(("attrs", "expected", "rewritten"), NORMALIZE)
def test_the_engine_renames_as_python_does(engine: Engine, attrs: dict[str, object], expected: dict[str, object],
                                           rewritten: tuple[str, ...]) -> None:
    text = {key: str(value) for key, value in attrs.items()}
    assert _renamed_in_engine(engine, list(text), list(text.values())) == list(normalize_attributes(text)[0].items())


DUPLICATES = [
    pytest.param(["http.method", "http.method"], ["GET", "POST"], id="last-value-wins"),
    pytest.param(["a", "http.target", "a"], ["1", "/x?q=1", "2"], id="kept-at-last-place"),
    pytest.param(["url.path", "http.target", "http.target"], ["/p", "/x?q", "/y?r"], id="target-dropped-whole"),
    pytest.param(["http.target", "url.query"], ["/x?q=1", "mine"], id="own-query-kept"),
    pytest.param(["net.host.name", "net.peer.name"], ["h", "p"], id="peer-before-host"),
]


@pytest.mark.parametrize(("keys", "values"), DUPLICATES)
def test_repeated_keys_rename_as_their_last_value_does(engine: Engine, keys: list[str], values: list[str]) -> None:
    """A span's attributes may repeat a key (OTLP does not forbid it): the plan keeps the
    last one at its place, as the attribute map of the old two-step path did."""
    last: dict[str, str] = {}
    for key, value in zip(keys, values, strict=True):
        last.pop(key, None)
        last[key] = value
    expected = list(normalize_attributes(last)[0].items())
    assert _renamed_in_engine(engine, keys, values) == expected


def _renamed_in_engine(engine: Engine, keys: list[str], values: list[str]) -> list[tuple[str, str]]:
    """normalize_attributes of (keys, values) in the engine, through a Join table of plans."""
    statements, plans = staging_name("statements"), staging_name("renames")
    engine.run(f"CREATE TABLE {statements} (Statement String, Masked String) ENGINE = Join(ANY, LEFT, Statement)")
    engine.run(f"CREATE TABLE {plans} ({PLANS_COLUMNS}) ENGINE = Join(ANY, LEFT, Shape)")
    try:
        found = [v for k, v in zip(keys, values, strict=True) if k == DEPRECATED_STATEMENT]
        if found:
            engine.load_arrow(statements, pa.table({"Statement": found[-1:], "Masked": [mask_sql_literals(found[-1])]}))
        engine.load_arrow(plans, plans_table([7], [rename_plan(keys)], [len(keys)]))
        steps, result = renamed_attributes_sql("texts", "shape", plans, statements)
        source = "SELECT {texts:Array(String)} AS texts, toUInt64(7) AS shape"
        sql = f"SELECT {result} AS m FROM (SELECT *, {', '.join(steps)} FROM ({source}))"
        got: list[tuple[str, str]] = engine.arrow(sql, {"texts": values}).column("m").to_pylist()[0]
    finally:
        engine.run(f"DROP TABLE {statements}")
        engine.run(f"DROP TABLE {plans}")
    return got
