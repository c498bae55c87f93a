"""Metric series from the Collector's metric tables: per step and group of attribute values.

Gauges: the last point of each stored series in a step (summed over the group's series, as
PromQL's ``sum by``) or the mean of the group's points. Sums and histograms: what was added
in a step. A delta point adds its value; a cumulative point adds its difference to the
previous point of its own series, or its whole value after a reset (a lower value, or a new
StartTimeUnix). The first point of a cumulative series in view is only a baseline (as in
Prometheus), so points up to LOOKBACK_S before the range are read to give the first step one.
Every value is a bound parameter; attribute keys too (``Attributes[{g0:String}]``)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from api.params import NS_PER_S, TimeRange
from api.queries.scope import TENANT_COLUMN, QueryScope, time_filter
from core.types import Row
from schemas.row_columns import EXEMPLAR_COLUMNS
from schemas.tables import EXEMPLARS_TABLE, METRIC_TABLE_BY_KIND
from sinks.warehouse import Warehouse

SeriesKind = Literal["gauge", "sum", "histogram"]
GaugeAggregation = Literal["last", "avg"]
SERVICE_KEY = "service.name"
LOOKBACK_S = 300  # Prometheus' default lookback delta
MAX_GROUP_BY_KEYS = 5
MAX_FILTERS = 8
MAX_STEPS = 11_000  # as Prometheus' range queries
MAX_STEP_S = 86_400
DEFAULT_STEPS = 300
MAX_ROWS = 100_000  # group x step rows one answer holds at most
# AggregationTemporality as the Collector stores it (the OTLP enum).
DELTA = 1
CUMULATIVE = 2
# One stored series: the columns of the tables' sort key that tell series apart.
_SERIES_ID = "cityHash64(ServiceName, Attributes, ResourceAttributes, ScopeName)"
_WINDOW = f"WINDOW w AS (PARTITION BY {_SERIES_ID} ORDER BY TimeUnix ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"


@dataclass(frozen=True)
class SeriesQuery:
    """What to read: a metric, a time range cut into steps, group keys and filters."""

    metric: str
    time: TimeRange
    step_s: int
    group_by: tuple[str, ...] = ()
    filters: dict[str, str] = field(default_factory=dict)
    max_rows: int = 100_000

    @property
    def step_ns(self) -> int:
        return self.step_s * NS_PER_S


def _attribute(param: str) -> str:
    # A point attribute first, then the resource's (where k8s.*, host.* live).
    key = f"{{{param}:String}}"
    return f"if(mapContains(Attributes, {key}), Attributes[{key}], ResourceAttributes[{key}])"


def _key(key: str, param: str) -> str:
    return "ServiceName" if key == SERVICE_KEY else _attribute(param)


class _Sql:
    """The shared parts of one series statement: WHERE, group columns, parameters."""

    def __init__(self, scope: QueryScope, q: SeriesQuery, from_ns: int) -> None:
        self.params: dict[str, object] = {"metric": q.metric, "from_ns": from_ns, "start_ns": q.time.start_ns,
                                          "end_ns": q.time.end_ns, "step_ns": q.step_ns, "max_rows": q.max_rows + 1}
        where = ("MetricName = {metric:String} AND TimeUnix >= fromUnixTimestamp64Nano({from_ns:Int64})"
                 " AND TimeUnix < fromUnixTimestamp64Nano({end_ns:Int64})" + scope.tenant_filter())
        for i, (key, value) in enumerate(q.filters.items()):
            self.params[f"fk{i}"], self.params[f"fv{i}"] = key, value
            where += f" AND {_key(key, f'fk{i}')} = {{fv{i}:String}}"
        self.where = where
        groups = []
        for i, key in enumerate(q.group_by):
            self.params[f"gk{i}"] = key
            groups.append(f"{_key(key, f'gk{i}')} AS g{i}")
        self.group_columns = "".join(f"{g}, " for g in groups)
        self.group_names = "".join(f"g{i}, " for i in range(len(groups)))
        self.step = "intDiv(toUnixTimestamp64Nano(TimeUnix) - {start_ns:Int64}, {step_ns:Int64}) AS step"
        self.scope = scope

    def params_of(self) -> dict[str, object]:
        return self.scope.params(**self.params)


async def _run(warehouse: Warehouse, sql: str, params: dict[str, object]) -> list[Row]:
    return await asyncio.to_thread(warehouse.query, sql, params)


async def metric_kinds(warehouse: Warehouse, scope: QueryScope, metric: str) -> dict[str, str]:
    """Kind -> unit of every metric table holding points named ``metric`` (any time)."""
    parts = [f"SELECT '{kind}' AS kind, MetricUnit AS unit FROM {scope.table(table)} "
             f"WHERE MetricName = {{metric:String}}{scope.tenant_filter()} LIMIT 1"
             for kind, table in METRIC_TABLE_BY_KIND.items()]
    rows = await _run(warehouse, " UNION ALL ".join(f"({p})" for p in parts), scope.params(metric=metric))
    return {row["kind"]: row["unit"] for row in rows}


async def sum_modes(warehouse: Warehouse, scope: QueryScope, q: SeriesQuery) -> set[tuple[int, bool]]:
    """The (AggregationTemporality, IsMonotonic) pairs of the sum's points in the range."""
    sql = _Sql(scope, q, q.time.start_ns)
    rows = await _run(warehouse, f"SELECT DISTINCT AggregationTemporality AS t, IsMonotonic AS m FROM "
                                 f"{scope.table(METRIC_TABLE_BY_KIND['sum'])} WHERE {sql.where}", sql.params_of())
    return {(int(r["t"]), bool(r["m"])) for r in rows}


async def gauge_steps(warehouse: Warehouse, scope: QueryScope, q: SeriesQuery, kind: SeriesKind,
                      aggregation: GaugeAggregation) -> list[Row]:
    """Rows (g0.., step, value): per group and step, the sum of each series' last point
    (``last``) or the mean of every point (``avg``). ``kind`` is gauge, or sum for a
    non-monotonic cumulative sum (an up-down counter reads like a gauge)."""
    s = _Sql(scope, q, q.time.start_ns)
    table = scope.table(METRIC_TABLE_BY_KIND[kind])
    if aggregation == "avg":
        inner = (f"SELECT {s.group_columns}{s.step}, avg(Value) AS value FROM {table} FINAL WHERE {s.where} "
                 f"GROUP BY {s.group_names}step")
    else:
        inner = (f"SELECT {s.group_names}step, sum(last) AS value FROM ("
                 f"SELECT {s.group_columns}{s.step}, argMax(Value, TimeUnix) AS last FROM {table} FINAL "
                 f"WHERE {s.where} GROUP BY {s.group_names}step, {_SERIES_ID}) GROUP BY {s.group_names}step")
    sql = f"SELECT * FROM ({inner}) ORDER BY {s.group_names}step LIMIT {{max_rows:UInt32}}"
    return await _run(warehouse, sql, s.params_of())


def _lookback_ns(q: SeriesQuery) -> int:
    return max(0, q.time.start_ns - max(LOOKBACK_S, q.step_s) * NS_PER_S)


async def sum_steps(warehouse: Warehouse, scope: QueryScope, q: SeriesQuery) -> list[Row]:
    """Rows (g0.., step, value): per group and step, the sum of delta points plus the
    increase of cumulative ones (resets handled, see the module docstring)."""
    s = _Sql(scope, q, _lookback_ns(q))
    added = (f"multiIf(AggregationTemporality = {DELTA}, Value, prev IS NULL, NULL, "
             "(IsMonotonic AND Value < prev) OR StartTimeUnix != prev_start, Value, Value - prev)")
    points = (f"SELECT {s.group_columns}{s.step}, TimeUnix, Value, StartTimeUnix, AggregationTemporality, IsMonotonic, "
              "lagInFrame(toNullable(Value)) OVER w AS prev, lagInFrame(StartTimeUnix) OVER w AS prev_start "
              f"FROM {scope.table(METRIC_TABLE_BY_KIND['sum'])} FINAL WHERE {s.where} {_WINDOW}")
    sql = (f"SELECT {s.group_names}step, sum({added}) AS value FROM ({points}) "
           "WHERE TimeUnix >= fromUnixTimestamp64Nano({start_ns:Int64}) "
           f"GROUP BY {s.group_names}step HAVING count({added}) > 0 "
           f"ORDER BY {s.group_names}step LIMIT {{max_rows:UInt32}}")
    return await _run(warehouse, sql, s.params_of())


async def histogram_steps(warehouse: Warehouse, scope: QueryScope, q: SeriesQuery) -> list[Row]:
    """Rows (g0.., step, bounds, buckets, count, sum): per group, step and bucket layout,
    the bucket counts, count and sum added (delta points as they are, cumulative ones as the
    difference to their series' previous point; a lower count, a new StartTimeUnix or new
    bounds is a reset)."""
    s = _Sql(scope, q, _lookback_ns(q))
    reset = ("(Count < prev_count OR StartTimeUnix != prev_start OR ExplicitBounds != prev_bounds "
             "OR length(BucketCounts) != length(prev_buckets))")
    whole = f"AggregationTemporality = {DELTA} OR {reset}"
    points = (f"SELECT {s.group_columns}{s.step}, TimeUnix, Count, Sum, BucketCounts, ExplicitBounds, "
              "StartTimeUnix, AggregationTemporality, "
              "lagInFrame(toNullable(Count)) OVER w AS prev_count, lagInFrame(Sum) OVER w AS prev_sum, "
              "lagInFrame(BucketCounts) OVER w AS prev_buckets, lagInFrame(ExplicitBounds) OVER w AS prev_bounds, "
              "lagInFrame(StartTimeUnix) OVER w AS prev_start "
              f"FROM {scope.table(METRIC_TABLE_BY_KIND['histogram'])} FINAL WHERE {s.where} {_WINDOW}")
    # Explicit UInt64: a difference of UInt64s is signed, and if() of both would be a Variant.
    buckets = "arrayMap((a, b) -> toUInt64(if(a >= b, a - b, 0)), BucketCounts, prev_buckets)"
    added = (f"SELECT {s.group_names}step, ExplicitBounds AS bounds, if({whole}, BucketCounts, {buckets}) AS b, "
             f"toUInt64(if({whole}, Count, Count - assumeNotNull(prev_count))) AS c, "
             f"if({whole}, Sum, Sum - prev_sum) AS s "
             f"FROM ({points}) WHERE TimeUnix >= fromUnixTimestamp64Nano({{start_ns:Int64}}) "
             f"AND (AggregationTemporality = {DELTA} OR prev_count IS NOT NULL)")
    sql = (f"SELECT {s.group_names}step, bounds, sumForEach(b) AS buckets, sum(c) AS count, sum(s) AS sum "
           f"FROM ({added}) GROUP BY {s.group_names}step, bounds "
           f"ORDER BY {s.group_names}bounds, step LIMIT {{max_rows:UInt32}}")
    return await _run(warehouse, sql, s.params_of())


async def series_exemplars(warehouse: Warehouse, scope: QueryScope, q: SeriesQuery, limit: int) -> list[Row]:
    """Exemplars of the metric in the range matching the filters (service.name on the
    service, other keys on the point attributes), oldest first; at most ``limit``."""
    params: dict[str, object] = {"metric": q.metric, "start_ns": q.time.start_ns, "end_ns": q.time.end_ns,
                                 "limit": limit}
    where = time_filter() + scope.tenant_filter(TENANT_COLUMN)
    for i, (key, value) in enumerate(q.filters.items()):
        params[f"fk{i}"], params[f"fv{i}"] = key, value
        column = "ServiceName" if key == SERVICE_KEY else f"Attributes[{{fk{i}:String}}]"
        where += f" AND {column} = {{fv{i}:String}}"
    sql = (f"SELECT {EXEMPLAR_COLUMNS} FROM {scope.table(EXEMPLARS_TABLE)} FINAL "
           f"WHERE MetricName = {{metric:String}}{where} ORDER BY Timestamp, TraceId, SpanId LIMIT {{limit:UInt32}}")
    return await _run(warehouse, sql, scope.params(**params))
