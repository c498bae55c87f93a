"""The shipped Grafana dashboards and datasources, and their queries as Grafana would send them.

The ClickHouse plugin's query path has two steps, mirrored here: Grafana's frontend replaces
template variables (a single value as it is, several as 'a','b'), then the plugin's backend
expands its $__ macros (pkg/macros/macros.go of grafana/clickhouse-datasource). Only the
macros the plugin defines are expanded; any other $__ name fails, so a typo in a panel is
an error here as it would be in Grafana."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "ops" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_s: float


@dataclass(frozen=True)
class Query:
    """One query of a dashboard: a panel target or a template variable."""

    where: str  # "dashboard / panel / refId", for test ids and messages
    datasource_type: str
    text: str  # rawSql or expr
    target: Mapping[str, Any]


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON under ops/grafana/dashboards, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def datasources() -> list[dict[str, Any]]:
    """Every provisioned datasource."""
    found: list[dict[str, Any]] = []
    for path in sorted(DATASOURCES.glob("*.yaml")):
        found += yaml.safe_load(path.read_text())["datasources"]
    return found


def queries(dashboard: Mapping[str, Any], name: str) -> Iterator[Query]:
    """The panel targets and query variables of ``dashboard``."""
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            raw = var["query"]["rawSql"] if isinstance(var["query"], dict) else var["query"]
            yield Query(f"{name} / variable {var['name']}", var["datasource"]["type"], raw, var)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel["datasource"]
            text = target.get("rawSql") if ds["type"] == CLICKHOUSE_PLUGIN else target.get("expr")
            yield Query(f"{name} / {panel['title']} / {target['refId']}", ds["type"], text or "", target)


def all_queries() -> list[Query]:
    return [q for name, board in dashboards().items() for q in queries(board, name)]


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(?!__)(\w+)")


def replace_variables(sql: str, values: Mapping[str, str | Sequence[str]]) -> str:
    """Grafana's template replacement with the ClickHouse plugin's formatter: a list becomes
    'a','b', a single value goes in as it is. An unknown variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"variable ${name} has no value (known: {sorted(values)})")
        found = values[name]
        return found if isinstance(found, str) else "'" + "','".join(found) + "'"

    return _VARIABLE.sub(value, sql)


def _date_time(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _date_time_ms(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC):%Y-%m-%d}')"


def _between(col: str, low: str, high: str) -> str:
    return f"{col} >= {low} AND {col} <= {high}"


def _seconds(r: TimeRange) -> int:
    return max(int(r.interval_s), 1)


def _ms(r: TimeRange) -> int:
    return max(int(r.interval_s * 1000), 1)


Macro = Callable[[TimeRange, list[str]], str]
MACROS: dict[str, tuple[int, Macro]] = {
    # name: (arguments, expansion), as the plugin's ClickHouseMacros define them.
    "timeFilter": (1, lambda r, a: _between(a[0], _date_time(r.start), _date_time(r.end))),
    "timeFilter_ms": (1, lambda r, a: _between(a[0], _date_time_ms(r.start), _date_time_ms(r.end))),
    "dateFilter": (1, lambda r, a: _between(a[0], _date(r.start), _date(r.end))),
    "timeFrom": (1, lambda r, a: f"{a[0]} >= {_date_time(r.start)}"),
    "timeTo": (1, lambda r, a: f"{a[0]} <= {_date_time(r.end)}"),
    "fromTime": (0, lambda r, a: _date_time(r.start)),
    "toTime": (0, lambda r, a: _date_time(r.end)),
    "fromTime_ms": (0, lambda r, a: _date_time_ms(r.start)),
    "toTime_ms": (0, lambda r, a: _date_time_ms(r.end)),
    "timeInterval": (1, lambda r, a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {_seconds(r)} second)"),
    "timeInterval_ms": (1, lambda r, a: f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {_ms(r)} millisecond)"),
    "interval_s": (0, lambda r, a: str(_seconds(r))),
}
_MACRO = re.compile(r"\$__(\w+)")


def _arguments(sql: str, open_at: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose "(" is at ``open_at`` (nested
    parentheses and quoted strings kept whole) and the index after its ")"."""
    depth, quote, args, current = 0, "", [], []
    for i in range(open_at, len(sql)):
        c = sql[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'`\"":
            quote = c
        elif c == "(":
            depth += 1
            if depth == 1:
                continue
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return [a for a in args if a], i + 1
        elif c == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(c)
    raise ValueError(f"unclosed macro call at {open_at}: {sql[open_at:open_at + 60]!r}")


def expand_macros(sql: str, time_range: TimeRange) -> str:
    """The plugin's $__ macros expanded; ValueError for an unknown macro or a wrong argument count."""
    out, pos = [], 0
    while (match := _MACRO.search(sql, pos)) is not None:
        name = match.group(1)
        if name not in MACROS:
            raise ValueError(f"$__{name} is not a macro of the ClickHouse plugin")
        want, expand = MACROS[name]
        out.append(sql[pos:match.start()])
        if want == 0:
            out.append(expand(time_range, []))
            pos = match.end()
            continue
        if match.end() >= len(sql) or sql[match.end()] != "(":
            raise ValueError(f"$__{name} needs {want} argument(s)")
        args, pos = _arguments(sql, match.end())
        if len(args) != want:
            raise ValueError(f"$__{name} expected {want} argument(s), received {len(args)}")
        out.append(expand(time_range, args))
    out.append(sql[pos:])
    return "".join(out)


def render(sql: str, values: Mapping[str, str | Sequence[str]], time_range: TimeRange) -> str:
    """What the plugin sends ClickHouse for ``sql``: variables, then macros."""
    return expand_macros(replace_variables(sql, values), time_range)


# Turned into calls of the plugin's own prefix by Grafana (Prometheus side): not metric names.
PROMQL_WORDS = frozenset({
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "group",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "abs", "clamp_min",
    "clamp_max", "sum_over_time", "avg_over_time", "max_over_time", "min_over_time", "label_replace", "vector",
    "scalar", "time", "absent",
})


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers outside label matchers, ranges,
    strings and grouping clauses that are not PromQL words."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped))
    return {n for n in names if n not in PROMQL_WORDS and not n.startswith("__")}
