"""The metrics plan: staged ExportMetricsServiceRequests -> rows of the five metrics tables
and of ``metric_exemplars``.

Rows are the Collector ClickHouse exporter's, as the Python decoder wrote them: one per
data point, int and double values both as Float64, absent optional Sum/Min/Max as 0.0,
exemplars in the ``Exemplars.*`` columns and also one ``metric_exemplars`` row each; a
metric with no data set has no rows. Enrichment: point attributes past the cardinality
limit (agents/cardinality.py) hold OVERFLOW_VALUE, in the metrics tables and in
metric_exemplars alike, and an exemplar carries the correlation ID of its trace when the
trace was seen before ('' otherwise: resolved at query time). A record with a time past
2262 or stored text that is not UTF-8 is refused whole, with the reason."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from agents.cardinality import OVERFLOW_VALUE, CardinalityLimiter
from agents.ingest.config import IngestConfig
from agents.ingest.plan import BatchContext, Decided, Lookups
from core.tenancy import TENANT_ATTRIBUTE
from core.types import Signal
from schemas.otlp_sql import (
    MAX_NANOS,
    attribute_map,
    attribute_text,
    attributes_valid,
    complex_values,
    hex_id,
    nanos,
    quote,
    string_array,
    texts_valid,
)
from schemas.otlp_wire import ATTRIBUTES, RECORD_COLUMN
from schemas.tables import EXEMPLARS_TABLE, METRIC_TABLE_BY_KIND

# The Metric.data kinds in the order of METRIC_TABLES: the flat ``kind`` column is an
# index into it, and the old path limited attributes table by table in this order.
KINDS: tuple[str, ...] = tuple(METRIC_TABLE_BY_KIND)
# metric_exemplars.MetricType per kind (the names stored so far); summaries have no exemplars.
EXEMPLAR_TYPES: tuple[str, ...] = ("gauge", "sum", "histogram", "exp_histogram")
_EXEMPLARS = (f"Array(Tuple(filtered_attributes {ATTRIBUTES}, time_unix_nano UInt64, span_id String, "
              "trace_id String, as_double Float64, as_int Int64))")
# One flat row per data point: where it is, its metric's fields, its own, then each
# kind's own fields (the type's default where the kind has none), then the columns every
# flat table has.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("record", "UInt64"), ("kind", "UInt8"),
    # The point's request order in its record: its (resource, scope, metric, point)
    # positions packed into one number (_packed).
    ("position", "UInt128"),
    ("res_attrs", ATTRIBUTES), ("res_schema_url", "String"), ("scope_name", "String"),
    ("scope_version", "String"), ("scope_attrs", ATTRIBUTES), ("scope_dropped", "UInt32"),
    ("scope_schema_url", "String"), ("name", "String"), ("description", "String"), ("unit", "String"),
    ("attrs", ATTRIBUTES), ("start_ns", "UInt64"), ("time_ns", "UInt64"), ("flags", "UInt32"),
    ("value", "Float64"), ("temporality", "Int32"), ("monotonic", "Bool"), ("count", "UInt64"),
    ("sum", "Float64"), ("min", "Float64"), ("max", "Float64"), ("bucket_counts", "Array(UInt64)"),
    ("explicit_bounds", "Array(Float64)"), ("scale", "Int32"), ("zero_count", "UInt64"),
    ("positive_offset", "Int32"), ("positive_counts", "Array(UInt64)"), ("negative_offset", "Int32"),
    ("negative_counts", "Array(UInt64)"), ("quantiles", "Array(Tuple(quantile Float64, value Float64))"),
    ("exemplars", _EXEMPLARS), ("complex", "Array(String)"), ("refusal", "String"),
)
_COMPUTED = ("complex", "refusal")  # from the other columns, once for all kinds


def number_value(point: str) -> str:
    """A NumberDataPoint's or Exemplar's value as the old ``as_double or float(as_int)``:
    only one of the pair is set and the other reads 0 (so -0.0 reads as 0.0, NaN stays)."""
    return f"if({point}.as_double != 0, {point}.as_double, toFloat64({point}.as_int))"


# Flat columns the same for every point of a metric (the rest come from the point).
_METRIC_LEVEL = {
    "record": RECORD_COLUMN, "res_attrs": "rs.resource.attributes", "res_schema_url": "rs.schema_url",
    "scope_name": "ss.scope.name", "scope_version": "ss.scope.version", "scope_attrs": "ss.scope.attributes",
    "scope_dropped": "ss.scope.dropped_attributes_count", "scope_schema_url": "ss.schema_url", "name": "m.name",
    "description": "m.description", "unit": "m.unit",
}
# What each point of any kind gives, as one tuple: one array of them per metric whatever
# its kind, so the records are unnested once (not once per kind).
_POINT_FIELDS: tuple[str, ...] = ("kind", "p_i", *(name for name, _ in _COLUMNS
                                                   if name not in (*_METRIC_LEVEL, "kind", "position", *_COMPUTED)))
_POINT = {"p_i": "i", "attrs": "p.attributes", "start_ns": "p.start_time_unix_nano", "time_ns": "p.time_unix_nano",
          "flags": "p.flags"}
_NUMBER = {"value": number_value("p"), "exemplars": "p.exemplars"}
_HISTOGRAM = {"count": "p.count", "sum": "p.sum", "min": "p.min", "max": "p.max", "exemplars": "p.exemplars"}
_OWN: dict[str, dict[str, str]] = {
    "gauge": _NUMBER,
    "sum": {**_NUMBER, "temporality": "m.sum.aggregation_temporality", "monotonic": "m.sum.is_monotonic"},
    "histogram": {**_HISTOGRAM, "bucket_counts": "p.bucket_counts", "explicit_bounds": "p.explicit_bounds",
                  "temporality": "m.histogram.aggregation_temporality"},
    "exponential_histogram": {
        **_HISTOGRAM, "scale": "p.scale", "zero_count": "p.zero_count", "positive_offset": "p.positive.offset",
        "positive_counts": "p.positive.bucket_counts", "negative_offset": "p.negative.offset",
        "negative_counts": "p.negative.bucket_counts",
        "temporality": "m.exponential_histogram.aggregation_temporality"},
    "summary": {"count": "p.count", "sum": "p.sum", "quantiles": "p.quantile_values"},
}

# Output columns over the ``points`` subquery of outputs(), by name.
_EXEMPLAR_COLUMNS = {
    "Exemplars.FilteredAttributes": "filtered_maps",
    "Exemplars.TimeUnix": f"arrayMap(e -> {nanos('e.time_unix_nano')}, exemplars)",
    "Exemplars.Value": f"arrayMap(e -> {number_value('e')}, exemplars)",
    "Exemplars.SpanId": f"arrayMap(e -> {hex_id('e.span_id')}, exemplars)",
    "Exemplars.TraceId": f"arrayMap(e -> {hex_id('e.trace_id')}, exemplars)",
}
_HEAD = {
    "ResourceAttributes": "res_map", "ResourceSchemaUrl": "res_schema_url", "ScopeName": "scope_name",
    "ScopeVersion": "scope_version", "ScopeAttributes": "scope_map", "ScopeDroppedAttrCount": "scope_dropped",
    "ScopeSchemaUrl": "scope_schema_url", "ServiceName": "res_map['service.name']", "MetricName": "name",
    "MetricDescription": "description", "MetricUnit": "unit", "Attributes": "point_map",
    "StartTimeUnix": nanos("start_ns"), "TimeUnix": nanos("time_ns"),
}
_HISTOGRAM_TAIL = {**_EXEMPLAR_COLUMNS, "Flags": "flags", "Min": "min", "Max": "max",
                   "AggregationTemporality": "temporality"}
# Insert columns per kind after _HEAD, in DDL order (schemas/migrations/0003_otel_metrics.sql).
_TAILS: dict[str, dict[str, str]] = {
    "gauge": {"Value": "value", "Flags": "flags", **_EXEMPLAR_COLUMNS},
    "sum": {"Value": "value", "Flags": "flags", **_EXEMPLAR_COLUMNS, "AggregationTemporality": "temporality",
            "IsMonotonic": "monotonic"},
    "histogram": {"Count": "count", "Sum": "sum", "BucketCounts": "bucket_counts",
                  "ExplicitBounds": "explicit_bounds", **_HISTOGRAM_TAIL},
    "exponential_histogram": {
        "Count": "count", "Sum": "sum", "Scale": "scale", "ZeroCount": "zero_count",
        "PositiveOffset": "positive_offset", "PositiveBucketCounts": "positive_counts",
        "NegativeOffset": "negative_offset", "NegativeBucketCounts": "negative_counts", **_HISTOGRAM_TAIL},
    "summary": {"Count": "count", "Sum": "sum", "ValueAtQuantiles.Quantile": "arrayMap(q -> q.quantile, quantiles)",
                "ValueAtQuantiles.Value": "arrayMap(q -> q.value, quantiles)", "Flags": "flags"},
}
_WHERE = "refusal = '' AND record NOT IN {excluded:Array(UInt64)}"


@dataclass(frozen=True)
class MetricLookups(Lookups):
    """Lookups, and the output tables the batch has rows for (METRIC_TABLES order)."""

    tables: tuple[str, ...] = ()


class MetricPlan:
    """SQL and decisions of the metrics signal; holds the worker's cardinality limiter."""

    signal: Signal = "metrics"
    flat_columns = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS)

    def __init__(self, config: IngestConfig, limiter: CardinalityLimiter,
                 clock: Callable[[], float] = time.time) -> None:
        self.config, self.limiter, self.clock = config, limiter, clock

    def flatten(self, nested: str, flat: str) -> str:
        points = f"arrayConcat({', '.join(_kind_points(index, kind) for index, kind in enumerate(KINDS))})"
        columns = ", ".join(_flat_column(name) for name, _ in _COLUMNS if name not in _COMPUTED)
        return (
            f"INSERT INTO {flat} SELECT *, {_complex_keys()}, {_refusal()} FROM (SELECT {columns} FROM {nested} "
            "ARRAY JOIN resource_metrics AS rs, arrayEnumerate(resource_metrics) AS rs_i "
            "ARRAY JOIN rs.scope_metrics AS ss, arrayEnumerate(rs.scope_metrics) AS ss_i "
            f"ARRAY JOIN ss.metrics AS m, arrayEnumerate(ss.metrics) AS m_i ARRAY JOIN {points} AS p)"
        )

    def flags(self, flat: str) -> str:
        return ("SELECT max(notEmpty(attrs)) AS attributes, "
                "max(arrayExists(e -> replaceAll(e.trace_id, '\\0', '') != '', exemplars)) AS traces "
                f"FROM {flat} WHERE refusal = ''")

    async def decide(self, batch: BatchContext, flags: Mapping[str, Any]) -> Decided:
        params = {"excluded": sorted(batch.excluded)}
        facts = (await batch.query(
            "SELECT kind, count() AS points, countIf(notEmpty(exemplars)) AS with_exemplars "
            f"FROM {batch.flat} WHERE {_WHERE} GROUP BY kind ORDER BY kind", params)).to_pylist()
        counts: Counter[str] = Counter(points=sum(f["points"] for f in facts))
        tables = [METRIC_TABLE_BY_KIND[KINDS[f["kind"]]] for f in facts]
        if any(f["with_exemplars"] for f in facts):
            tables.append(EXEMPLARS_TABLE)
        overflow = traces = None
        if facts and flags.get("attributes"):
            overflow = await self._limit(batch, params, counts)
        if facts and flags.get("traces"):
            traces = await self._traces(batch, params)
        lookups = MetricLookups(complex=batch.complex_table, traces=traces, overflow=overflow, tables=tuple(tables))
        return Decided(lookups, counts=counts)

    async def _limit(self, batch: BatchContext, params: Mapping[str, Any], counts: Counter[str]) -> str | None:
        """Admit each distinct (key, value) of point attributes; the Join table of those
        that overflow (None when none does)."""
        # The old path called limit_attributes per point, in record order, table by table
        # (KINDS order). At one now_s an answer never changes for a pair once given (a value
        # admitted at now_s cannot expire at now_s, and a full key stays full), so with one
        # now_s per batch, one admit per distinct pair in order of first appearance gives
        # every occurrence the answer the old calls gave; ``occurrences`` keeps the
        # overflow count per occurrence, as before.
        first_seen = _packed("UInt256", [("record", 64), ("kind", 8), ("position", 128), ("i", 32)])
        found = await batch.query(
            "SELECT kv.1 AS key, kv.2 AS value, count() AS occurrences "
            f"FROM (SELECT record, kind, position, {attribute_map('attrs', batch.complex_table)} AS m "
            f"FROM {batch.flat} WHERE {_WHERE}) "
            "ARRAY JOIN arrayZip(mapKeys(m), mapValues(m)) AS kv, arrayEnumerate(mapKeys(m)) AS i "
            f"GROUP BY key, value ORDER BY min({first_seen})", params)
        now_s = self.clock()
        before = sum(self.limiter.overflow_counts().values())
        keys, values = [], []
        for key, value, occurrences in zip(found.column("key").to_pylist(), found.column("value").to_pylist(),
                                           found.column("occurrences").to_pylist(), strict=True):
            # A value that is OVERFLOW_VALUE itself reads the same either way.
            if self.limiter.admit(key, value, now_s, occurrences) != value:
                keys.append(key)
                values.append(value)
        counts["cardinality_overflow"] += sum(self.limiter.overflow_counts().values()) - before
        if not keys:
            return None
        return await batch.lookup("overflow", "Key String, Value String, Overflowed UInt8", "Key, Value",
                                  pa.table({"Key": keys, "Value": values,
                                            "Overflowed": pa.array([1] * len(keys), pa.uint8())}))

    async def _traces(self, batch: BatchContext, params: Mapping[str, Any]) -> str | None:
        """The Join table of the correlation IDs of exemplars' traces seen before (None
        when none was)."""
        tenant = attribute_text("res_attrs", TENANT_ATTRIBUTE, batch.complex_table)
        found = await batch.query(
            f"SELECT DISTINCT {tenant} AS tenant, trace_id FROM {batch.flat} "
            f"ARRAY JOIN arrayMap(e -> {hex_id('e.trace_id')}, exemplars) AS trace_id "
            f"WHERE {_WHERE} AND trace_id != ''", params)
        known = await batch.known(set(zip(found.column("tenant").to_pylist(), found.column("trace_id").to_pylist(),
                                          strict=True)))
        if not known:
            return None
        data = pa.table({"tenant": [k[0] for k in known], "trace_id": [k[1] for k in known],
                         "CorrelationId": [s.correlation_id for s in known.values()]})
        return await batch.lookup("traces", "tenant String, trace_id String, CorrelationId String",
                                  "tenant, trace_id", data)

    def outputs(self, flat: str, lookups: Lookups) -> dict[str, str]:
        tables = lookups.tables if isinstance(lookups, MetricLookups) else (
            *METRIC_TABLE_BY_KIND.values(), EXEMPLARS_TABLE)
        out: dict[str, str] = {}
        for index, kind in enumerate(KINDS):
            table = METRIC_TABLE_BY_KIND[kind]
            if table in tables:
                columns = {**_HEAD, **_TAILS[kind]}
                select = ", ".join(f"{sql} AS `{name}`" for name, sql in columns.items())
                out[table] = (f"SELECT record AS _record, {select} FROM ({_points(flat, lookups, f'kind = {index}')}) "
                              "ORDER BY record, position")
        if EXEMPLARS_TABLE in tables:
            out[EXEMPLARS_TABLE] = _exemplars(flat, lookups)
        return out


def _kind_points(index: int, kind: str) -> str:
    """The _POINT_FIELDS tuples of a metric's points of ``kind`` (none for another kind;
    the fields ``kind`` has not hold their type's default)."""
    own = {"kind": f"toUInt8({index})", **_POINT, **_OWN[kind]}
    types = dict(_COLUMNS)
    fields = ", ".join(own[name] if name in own else f"defaultValueOfTypeName({quote(types[name])})"
                       for name in _POINT_FIELDS)
    # The staged metric has a tuple for every kind: the oneof's presence column says
    # which one is the metric's data.
    points = f"if(m.data = {quote(kind)}, m.{kind}.data_points, [])"
    return f"arrayMap((p, i) -> ({fields}), {points}, arrayEnumerate({points}))"


def _packed(type_: str, parts: list[tuple[str, int]]) -> str:
    """Unsigned integers (expression, bits wide) as one ``type_`` number that sorts as
    their tuple would: the engine compares and aggregates one number several times
    faster than a tuple."""
    shift = sum(bits for _, bits in parts)
    packed = ""
    for expr, bits in parts:
        shift -= bits
        term = f"bitShiftLeft(to{type_}({expr}), {shift})"
        packed = f"bitOr({packed}, {term})" if packed else term
    return packed


def _flat_column(name: str) -> str:
    if name == "position":
        p_i = f"p.{_POINT_FIELDS.index('p_i') + 1}"
        return f"{_packed('UInt128', [('rs_i', 32), ('ss_i', 32), ('m_i', 32), (p_i, 32)])} AS position"
    if name in _POINT_FIELDS:
        return f"p.{_POINT_FIELDS.index(name) + 1} AS {name}"
    return f"{_METRIC_LEVEL[name]} AS {name}"


def _complex_keys() -> str:
    return (f"arrayConcat({complex_values('res_attrs')}, {complex_values('scope_attrs')}, "
            f"{complex_values('attrs')}, "
            f"arrayFlatten(arrayMap(e -> {complex_values('e.filtered_attributes')}, exemplars)))")


def _refusal() -> str:
    max_ns = MAX_NANOS
    texts = texts_valid("res_schema_url", "scope_name", "scope_version", "scope_schema_url", "name", "description",
                        "unit")
    text_ok = (f"{attributes_valid('res_attrs')} AND {attributes_valid('scope_attrs')} AND {attributes_valid('attrs')} "
               f"AND {texts} AND arrayAll(e -> {attributes_valid('e.filtered_attributes')}, exemplars)")
    return (f"multiIf(start_ns > {max_ns} OR time_ns > {max_ns}, "
            "'a metric data point is stamped past 2262 (beyond DateTime64 nanoseconds)', "
            f"arrayExists(e -> e.time_unix_nano > {max_ns}, exemplars), "
            "'a metric exemplar is stamped past 2262 (beyond DateTime64 nanoseconds)', "
            f"NOT ({text_ok}), 'a metric holds text that is not valid UTF-8', '')")


def _points(flat: str, lookups: Lookups, condition: str) -> str:
    """The flat rows to store that meet ``condition``, with their maps built once: the
    attribute maps are long expressions, named many times by the outputs."""
    cx = lookups.complex
    point_map = attribute_map("attrs", cx)
    if lookups.overflow:
        point_map = (f"mapApply((k, v) -> (k, if(joinGet('{lookups.overflow}', 'Overflowed', k, v), "
                     f"{quote(OVERFLOW_VALUE)}, v)), {point_map})")
    return (f"SELECT *, {attribute_map('res_attrs', cx)} AS res_map, {attribute_map('scope_attrs', cx)} AS scope_map, "
            f"{point_map} AS point_map, arrayMap(e -> {attribute_map('e.filtered_attributes', cx)}, exemplars) "
            f"AS filtered_maps FROM {flat} WHERE {_WHERE} AND {condition}")


def _exemplars(flat: str, lookups: Lookups) -> str:
    """``metric_exemplars`` rows: one per exemplar, in record, kind and point order."""
    correlation = "''"
    if lookups.traces:
        correlation = f"if(TraceId != '', joinGet('{lookups.traces}', 'CorrelationId', Tenant, TraceId), '')"
    # An exemplar without a time takes its point's: 0 would file it under 1970 for the TTL.
    return (
        "SELECT record AS _record, "
        f"{nanos('if(e.time_unix_nano = 0, time_ns, e.time_unix_nano)')} AS Timestamp, name AS MetricName, "
        f"{string_array(EXEMPLAR_TYPES)}[kind + 1] AS MetricType, res_map['service.name'] AS ServiceName, "
        f"{number_value('e')} AS Value, {hex_id('e.trace_id')} AS TraceId, {hex_id('e.span_id')} AS SpanId, "
        f"{correlation} AS CorrelationId, filtered AS FilteredAttributes, point_map AS Attributes, "
        f"res_map[{quote(TENANT_ATTRIBUTE)}] AS Tenant "
        f"FROM ({_points(flat, lookups, 'notEmpty(exemplars)')}) "
        "ARRAY JOIN exemplars AS e, filtered_maps AS filtered, arrayEnumerate(exemplars) AS e_i "
        "ORDER BY record, kind, position, e_i"
    )
