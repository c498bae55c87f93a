"""Attribute conditions (api/conditions.py) as a WHERE fragment over a table's attribute Maps.

Keys and values are bound parameters; only the operator (from a closed set) and the column
names (constants of the caller) are written into the SQL. Each condition is
``mapContains(m, k) AND m[k] <op> v``: the first is served by the table's bloom filter on
``mapKeys(m)``, an equality by the one on ``mapValues(m)`` (both in schemas/migrations/0001
and 0002), so a search skips the granules that cannot hold the attribute.
"""
from __future__ import annotations

from typing import Any

from api.conditions import Condition

OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})


def _one(column: str, condition: Condition, key: str, value: str) -> str:
    if condition.op not in OPERATORS:  # the parser's Literal; checked again because it is written into SQL
        raise ValueError(f"unknown operator {condition.op!r}")
    if condition.number is not None:
        # Attributes are stored as text; a bare number compares as Float64 (NULL, so no match,
        # for text that is not a number).
        test = f"toFloat64OrNull({column}[{{{key}:String}}]) {condition.op} {{{value}:Float64}}"
    else:
        test = f"{column}[{{{key}:String}}] {condition.op} {{{value}:String}}"
    return f"(mapContains({column}, {{{key}:String}}) AND {test})"


def conditions_filter(conditions: tuple[Condition, ...], record_column: str,
                      resource_column: str = "ResourceAttributes") -> tuple[str, dict[str, Any]]:
    """An ``AND …`` fragment requiring every condition of one row, and its parameters
    (named ``attr_k<i>``/``attr_v<i>``); '' and {} without conditions."""
    where = ""
    params: dict[str, Any] = {}
    for i, condition in enumerate(conditions):
        key, value = f"attr_k{i}", f"attr_v{i}"
        params[key] = condition.key
        params[value] = condition.number if condition.number is not None else condition.value
        columns = {"record": [record_column], "resource": [resource_column],
                   "either": [record_column, resource_column]}[condition.scope]
        where += " AND (" + " OR ".join(_one(column, condition, key, value) for column in columns) + ")"
    return where, params
