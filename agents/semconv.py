"""Normalisation of deprecated OpenTelemetry semantic-convention attributes and log severities."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

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


# How an output value of a rename plan is made from its source attribute's value.
COPY, PATH, QUERY, MASK = 0, 1, 2, 3


@dataclass(frozen=True)
class RenamePlan:
    """What normalize_attributes does to attributes with these keys, whatever their values:
    the output keys in order, each one's source (index of the input attribute) and step
    (COPY, PATH or QUERY of an ``http.target``, MASK of a ``db.statement``), and the
    deprecated keys found, in RENAMES order. A QUERY output is left out when the value
    has no query, which only the value tells; nothing after it can take its key."""

    keys: tuple[str, ...]
    sources: tuple[int, ...]
    steps: tuple[int, ...]
    rewritten: tuple[str, ...]


def rename_plan(keys: Sequence[str]) -> RenamePlan:
    """The plan for attributes with ``keys``, in order. A repeated key counts once, at its
    last place, with its last value (as schemas/otlp_sql.py's attribute_map keeps it)."""
    last = {key: index for index, key in enumerate(keys)}
    out = {key: (index, COPY) for index, key in enumerate(keys) if last[key] == index and key not in RENAMES}
    rewritten: list[str] = []
    for old, new in RENAMES.items():
        if old not in last:
            continue
        rewritten.append(old)
        if new in last:
            continue
        source = last[old]
        if old == "http.target":
            pairs = [("url.path", PATH), ("url.query", QUERY)]
        else:
            pairs = [(new, MASK if old == DEPRECATED_STATEMENT else COPY)]
        for key, step in pairs:
            # setdefault: stable keys from the input and earlier table rows stay.
            out.setdefault(key, (source, step))
    return RenamePlan(tuple(out), tuple(s for s, _ in out.values()), tuple(s for _, s in out.values()),
                      tuple(rewritten))


def _apply_step(step: int, value: object) -> object | None:
    """The output value of one plan step (None: left out, an empty query)."""
    if not isinstance(value, str) or step == COPY:
        # A value that is not text passes whole, even an http.target's (its path).
        return None if step == QUERY else value
    if step == MASK:
        return mask_sql_literals(value)
    path, sep, query = value.partition("?")
    if step == PATH:
        return path
    return query if sep and query else None


def normalize_attributes(attrs: Mapping[str, object]) -> tuple[dict[str, object], tuple[str, ...]]:
    """Rewrite deprecated semantic-convention keys to their stable names.

    Returns a new dict (the input is not changed) and the deprecated keys that were found,
    in RENAMES order. A stable key already present keeps its value and the deprecated key
    is dropped; for ``http.target`` a present ``url.path`` drops it whole. Values pass
    through unchanged except ``db.statement`` (literals masked) and ``http.target`` (split
    into ``url.path`` and, when non-empty, ``url.query``). Never raises.
    """
    plan = rename_plan(list(attrs))
    values = list(attrs.values())
    out = {}
    for key, source, step in zip(plan.keys, plan.sources, plan.steps, strict=True):
        value = _apply_step(step, values[source])
        if value is not None:
            out[key] = value
    return out, plan.rewritten


DEPRECATED_STATEMENT = "db.statement"

# The Join table of a batch's rename plans, by the hash of their attribute keys.
PLANS_COLUMNS = "Shape UInt64, Keys Array(String), Steps Array(UInt8), Ranks Array(UInt32), Target UInt32"


def plans_table(shapes: Sequence[int], plans: Sequence[RenamePlan], inputs: Sequence[int]) -> pa.Table:
    """The rows of PLANS_COLUMNS: ``plans[i]`` is the plan of ``inputs[i]`` attribute keys
    hashed to ``shapes[i]``.

    Ranks has one entry per input attribute and one more for a copy of the http.target's
    value (the source of a QUERY step, Target its 1-based index, 0 when none): the output
    position each one's value goes to, 0 for none. Sorting the kept values by rank puts
    them in output order without a lambda that captures the row's array (see
    renamed_attributes_sql)."""
    rows: dict[str, list[Any]] = {"Shape": list(shapes), "Keys": [], "Steps": [], "Ranks": [], "Target": []}
    for plan, count in zip(plans, inputs, strict=True):
        ranks, target = [0] * (count + 1), 0
        for position, (source, step) in enumerate(zip(plan.sources, plan.steps, strict=True), start=1):
            if step == QUERY:
                ranks[-1], target = position, source + 1
            else:
                ranks[source] = position
        rows["Keys"].append(list(plan.keys))
        rows["Steps"].append(list(plan.steps))
        rows["Ranks"].append(ranks)
        rows["Target"].append(target)
    return pa.table(rows, schema=pa.schema([("Shape", pa.uint64()), ("Keys", pa.list_(pa.string())),
                                            ("Steps", pa.list_(pa.uint8())), ("Ranks", pa.list_(pa.uint32())),
                                            ("Target", pa.uint32())]))


def renamed_attributes_sql(texts: str, shape: str, plans: str, statements: str | None) -> tuple[list[str], str]:
    """``normalize_attributes`` in ClickHouse SQL, by the batch's rename plans.

    ``texts`` is an Array(String) of the row's attribute values as text, in input order,
    ``shape`` the hash of its keys, ``plans`` the Join table of plans_table's rows and
    ``statements`` a Join table mapping each ``db.statement`` text to its masked text
    (mask_sql_literals runs in Python, once per distinct statement; None when the batch
    has none). Returns the steps, ``expr AS name`` items to select in a subquery under
    the result, and the result: a Map(String, String).

    The renaming is decided once per distinct list of keys (a batch has a handful), not
    per row: deciding it per row in SQL took 100-180 ms per 20k spans of ten attributes.
    No lambda here captures an array of the row: ClickHouse copies a captured column for
    every element the lambda runs on."""
    masked = f"joinGet('{statements}', 'Masked', v)" if statements else "v"
    query = "if(position(v, '?') > 0, substring(v, position(v, '?') + 1), '')"
    steps = [
        f"joinGet('{plans}', 'Ranks', {shape}) AS _semconv_ranks",
        f"arrayPushBack({texts}, {texts}[joinGet('{plans}', 'Target', {shape})]) AS _semconv_texts",
        "arraySort((v, r) -> r, arrayFilter((v, r) -> r > 0, _semconv_texts, _semconv_ranks), "
        "arrayFilter(r -> r > 0, _semconv_ranks)) AS _semconv_sorted",
        f"joinGet('{plans}', 'Steps', {shape}) AS _semconv_steps",
        f"arrayMap((v, s) -> multiIf(s = {COPY}, v, s = {PATH}, splitByChar('?', v, 2)[1], s = {QUERY}, {query}, "
        f"{masked}), _semconv_sorted, _semconv_steps) AS _semconv_values",
        f"arrayMap((v, s) -> s != {QUERY} OR v != '', _semconv_values, _semconv_steps) AS _semconv_kept",
    ]
    return steps, (f"mapFromArrays(arrayFilter((k, w) -> w, joinGet('{plans}', 'Keys', {shape}), _semconv_kept), "
                   "arrayFilter((v, w) -> w, _semconv_values, _semconv_kept))")


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
