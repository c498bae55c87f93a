"""Attribute conditions (api/conditions.py) as a WHERE fragment over a table's attribute Maps.

Keys and values are bound parameters; only the operator (from a closed set) and the column
names (constants of the caller) are written into the SQL. Each condition is
``mapContains(m, k) AND m[k] <op> v``: the first is served by the table's bloom filter on
``mapKeys(m)``, an equality (``=`` or ``IN``) by the one on ``mapValues(m)`` (both in
schemas/migrations/0001 and 0002), so a search skips the granules that cannot hold the
attribute.
"""
from __future__ import annotations

from typing import Any

from api.conditions import Condition

OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})


def _test(attribute: str, condition: Condition, value: str) -> tuple[str, dict[str, Any]]:
    """The comparison of one attribute (a Map lookup) and its value parameters."""
    if condition.op not in OPERATORS:  # the parser's Literal; checked again because it is written into SQL
        raise ValueError(f"unknown operator {condition.op!r}")
    if condition.number is None:
        return f"{attribute} {condition.op} {{{value}:String}}", {value: condition.value}
    if condition.op in ("=", "!="):
        # The number's stored forms (two parameters always; the second may repeat the first);
        # != also needs a number there, as TraceQL needs the type to match.
        forms = f"({{{value}a:String}}, {{{value}b:String}})"
        params = {f"{value}a": condition.texts[0], f"{value}b": condition.texts[-1]}
        if condition.op == "=":
            return f"{attribute} IN {forms}", params
        return f"isNotNull(toFloat64OrNull({attribute})) AND {attribute} NOT IN {forms}", params
    # NULL, so no match, for text that is not a number.
    return f"toFloat64OrNull({attribute}) {condition.op} {{{value}:Float64}}", {value: condition.number}


def conditions_filter(conditions: tuple[Condition, ...], record_column: str,
                      resource_column: str = "ResourceAttributes") -> tuple[str, dict[str, Any]]:
    """An ``AND …`` fragment requiring every condition of one row, and its parameters
    (named ``attr_k<i>``, ``attr_v<i>…``); '' and {} without conditions."""
    where = ""
    params: dict[str, Any] = {}
    for i, condition in enumerate(conditions):
        key, value = f"attr_k{i}", f"attr_v{i}"
        params[key] = condition.key
        columns = {"record": [record_column], "resource": [resource_column],
                   "either": [record_column, resource_column]}[condition.scope]
        either = []
        for column in columns:
            test, test_params = _test(f"{column}[{{{key}:String}}]", condition, value)
            either.append(f"(mapContains({column}, {{{key}:String}}) AND {test})")
            params.update(test_params)
        where += " AND (" + " OR ".join(either) + ")"
    return where, params
