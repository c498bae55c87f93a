"""Normalisation of deprecated OpenTelemetry semantic-convention attributes and log severities."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from schemas.otlp_sql import quote, string_array, string_set

__all__ = [
    "DEPRECATED_STATEMENT",
    "RENAMES",
    "SEVERITY_TEXTS",
    "mask_sql_literals",
    "normalize_attributes",
    "normalize_severity",
]

# Deprecated key -> stable key. Order is precedence: when two deprecated keys map to the
# same stable key (net.peer.name and net.host.name), the earlier one wins.
RENAMES: Mapping[str, str] = {
    "http.method": "http.request.method",
    "http.status_code": "http.response.status_code",
    "http.target": "url.path",  # also yields url.query, see _split_target
    "http.url": "url.full",
    "http.scheme": "url.scheme",
    "http.user_agent": "user_agent.original",
    "http.flavor": "network.protocol.version",
    "http.client_ip": "client.address",
    "http.request_content_length": "http.request.body.size",
    "http.response_content_length": "http.response.body.size",
    "db.statement": "db.query.text",  # literals masked, see mask_sql_literals
    "db.name": "db.namespace",
    "db.system": "db.system.name",
    "db.operation": "db.operation.name",
    "db.sql.table": "db.collection.name",
    "net.peer.name": "server.address",
    "net.peer.port": "server.port",
    "net.sock.peer.addr": "network.peer.address",
    "net.sock.peer.port": "network.peer.port",
    "net.host.name": "server.address",
    "net.host.port": "server.port",
    "net.protocol.name": "network.protocol.name",
    "net.protocol.version": "network.protocol.version",
}

# Canonical OTel severity text per range of four SeverityNumbers, starting at 1.
SEVERITY_TEXTS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")

# Spellings seen from syslog, log4j/logback, java.util.logging, Python and Go loggers.
_SEVERITY_ALIASES: Mapping[str, str] = {
    "TRACE": "TRACE", "FINEST": "TRACE", "FINER": "TRACE", "VERBOSE": "TRACE",
    "DEBUG": "DEBUG", "DBG": "DEBUG", "FINE": "DEBUG", "CONFIG": "DEBUG",
    "INFO": "INFO", "INFORMATION": "INFO", "INFORMATIONAL": "INFO", "NOTICE": "INFO",
    "WARN": "WARN", "WARNING": "WARN",
    "ERROR": "ERROR", "ERR": "ERROR", "SEVERE": "ERROR",
    "FATAL": "FATAL", "CRITICAL": "FATAL", "CRIT": "FATAL", "ALERT": "FATAL",
    "EMERG": "FATAL", "EMERGENCY": "FATAL", "PANIC": "FATAL",
}
# OTel short names carry a step inside the range: INFO2 is 10, WARN4 is 16.
_SEVERITY_STEP = re.compile(r"(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)([1-4])")

# One pass over the statement so that quotes inside identifiers and digits inside names
# are seen in context. String literals may carry a N/X/B/E prefix and '' escapes; an
# unterminated literal is masked to the end, because leaking it is worse than over-masking.
_SQL_TOKENS = re.compile(
    r"""
      (?P<quoted_ident>"(?:[^"]|"")*"|`[^`]*`)
    | (?P<string>(?:(?<![A-Za-z0-9_$])[NXBEnxbe])?'(?:[^']|'')*(?:'|\Z))
    | (?P<number>(?<![A-Za-z0-9_$.])
          (?:0[xX][0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
          (?![A-Za-z0-9_$]))
    """,
    re.VERBOSE,
)


def mask_sql_literals(sql: str) -> str:
    """Return sql with every string and numeric literal replaced by ``?``.

    String literals ``'...'`` (with ``''`` escapes and an optional N/X/B/E prefix) and
    numbers (integers, decimals, exponents, hex) become ``?``. Identifiers such as
    ``table1`` or ``"col 2"``, placeholders (``?``, ``$1``, ``:name``) and keywords are
    kept. Never raises.
    """

    def replace(match: re.Match[str]) -> str:
        if match.lastgroup == "quoted_ident":
            return match.group(0)
        return "?"

    return _SQL_TOKENS.sub(replace, sql)


def _split_target(value: object) -> list[tuple[str, object]]:
    if not isinstance(value, str):
        return [("url.path", value)]
    path, sep, query = value.partition("?")
    pairs: list[tuple[str, object]] = [("url.path", path)]
    if sep and query:
        pairs.append(("url.query", query))
    return pairs


def _mask_statement(value: object) -> list[tuple[str, object]]:
    return [("db.query.text", mask_sql_literals(value) if isinstance(value, str) else value)]


_CONVERTERS: Mapping[str, Callable[[object], list[tuple[str, object]]]] = {
    "http.target": _split_target,
    "db.statement": _mask_statement,
}


def normalize_attributes(attrs: Mapping[str, object]) -> tuple[dict[str, object], tuple[str, ...]]:
    """Rewrite deprecated semantic-convention keys to their stable names.

    Returns a new dict (the input is not changed) and the deprecated keys that were found,
    in RENAMES order. A stable key already present keeps its value and the deprecated key
    is dropped; for ``http.target`` a present ``url.path`` drops it whole. Values pass
    through unchanged except ``db.statement`` (literals masked) and ``http.target`` (split
    into ``url.path`` and, when non-empty, ``url.query``). Never raises.
    """
    out = {key: value for key, value in attrs.items() if key not in RENAMES}
    rewritten: list[str] = []
    for old, new in RENAMES.items():
        if old not in attrs:
            continue
        rewritten.append(old)
        if new in attrs:
            continue
        converter = _CONVERTERS.get(old)
        pairs = converter(attrs[old]) if converter else [(new, attrs[old])]
        for key, value in pairs:
            # setdefault: stable keys from the input and earlier table rows stay.
            out.setdefault(key, value)
    return out, tuple(rewritten)


DEPRECATED_STATEMENT = "db.statement"


def normalized_attributes_sql(attrs: str, statements: str | None) -> tuple[list[str], str]:
    """``normalize_attributes`` over a Map(String, String) column, in ClickHouse SQL.

    Returns the steps, ``expr AS name`` items to select (in order) in the same SELECT
    as the result or in a subquery under it, and the result expression, which reads
    them. ``statements`` is a Join table mapping each ``db.statement`` of the batch to its
    masked text (mask_sql_literals runs in Python, once per distinct statement); None
    when the batch has none.

    No lambda here captures an array of the row: ClickHouse copies a captured column
    for every element the lambda runs on, and the first version (``has(keys, ...)``
    inside lambdas) cost 0.28 s per 22k spans of ten attributes, most of the output
    query. Instead the renamed pairs follow the kept ones, in RENAMES order, and the
    first pair of each key wins: a stable key already present keeps its value, and of
    two deprecated keys with one stable name the first in RENAMES order wins, as in
    normalize_attributes."""
    olds, news = string_array(tuple(RENAMES)), string_array(tuple(RENAMES.values()))
    deprecated = string_set(tuple(RENAMES))
    target, statement = quote("http.target"), quote(DEPRECATED_STATEMENT)
    path, query = "splitByChar('?', v, 2)[1]", "substring(v, position(v, '?') + 1)"
    has_query = f"position(v, '?') > 0 AND {query} != ''"
    masked = f"joinGet('{statements}', 'Masked', v)" if statements else "v"
    steps = [
        f"mapKeys({attrs}) AS _semconv_keys", f"mapValues({attrs}) AS _semconv_values",
        # http.target is dropped whole (url.query too) when url.path is present already.
        "has(_semconv_keys, 'url.path') AS _semconv_has_path",
        f"arrayMap(k -> if(k IN {deprecated} AND NOT (k = {target} AND _semconv_has_path), indexOf({olds}, k), 0), "
        "_semconv_keys) AS _semconv_rank",
        "arraySort((k, r) -> r, arrayFilter((k, r) -> r > 0, _semconv_keys, _semconv_rank), "
        "arrayFilter(r -> r > 0, _semconv_rank)) AS _semconv_old_keys",
        "arraySort((v, r) -> r, arrayFilter((v, r) -> r > 0, _semconv_values, _semconv_rank), "
        "arrayFilter(r -> r > 0, _semconv_rank)) AS _semconv_old_values",
        f"arrayConcat(arrayFilter(k -> k NOT IN {deprecated}, _semconv_keys), arrayFlatten(arrayMap((k, v) -> "
        f"if(k = {target}, if({has_query}, ['url.path', 'url.query'], ['url.path']), "
        f"[transform(k, {olds}, {news}, '')]), _semconv_old_keys, _semconv_old_values))) AS _semconv_all_keys",
        f"arrayConcat(arrayFilter((v, k) -> k NOT IN {deprecated}, _semconv_values, _semconv_keys), "
        f"arrayFlatten(arrayMap((k, v) -> if(k = {target}, if({has_query}, [{path}, {query}], [{path}]), "
        f"[if(k = {statement}, {masked}, v)]), _semconv_old_keys, _semconv_old_values))) AS _semconv_all_values",
        "arrayEnumerateUniq(_semconv_all_keys) AS _semconv_nth",
    ]
    return steps, ("mapFromArrays(arrayFilter((k, n) -> n = 1, _semconv_all_keys, _semconv_nth), "
                   "arrayFilter((v, n) -> n = 1, _semconv_all_values, _semconv_nth))")


def deprecated_count_sql(keys: str) -> str:
    """How many distinct deprecated keys an Array(String) of attribute keys holds."""
    return f"length(arrayDistinct(arrayFilter(k -> k IN {string_set(tuple(RENAMES))}, {keys})))"


def _number_from_text(text: str) -> int:
    upper = text.strip().upper()
    step = _SEVERITY_STEP.fullmatch(upper)
    if step:
        return SEVERITY_TEXTS.index(step.group(1)) * 4 + int(step.group(2))
    canonical = _SEVERITY_ALIASES.get(upper)
    if canonical is None:
        return 0
    return SEVERITY_TEXTS.index(canonical) * 4 + 1


def normalize_severity(number: int, text: str) -> tuple[int, str]:
    """Return a consistent (SeverityNumber, canonical SeverityText) pair.

    Numbers 1-24 map to TRACE, DEBUG, INFO, WARN, ERROR, FATAL in ranges of four. A set
    number wins and its canonical text is returned. With number 0 (or outside 1-24) the
    number is derived from the text, case-insensitively and accepting common aliases
    (WARNING, ERR, CRITICAL, EMERG, NOTICE, INFO2 ...); an unknown text is returned
    unchanged with number 0. (0, "") stays (0, ""). Never raises.
    """
    if 1 <= number <= 24:
        return number, SEVERITY_TEXTS[(number - 1) // 4]
    if not text or not text.strip():
        return 0, ""
    derived = _number_from_text(text)
    if derived == 0:
        return 0, text
    return derived, SEVERITY_TEXTS[(derived - 1) // 4]
