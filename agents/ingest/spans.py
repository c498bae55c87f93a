"""The spans plan: staged ExportTraceServiceRequests -> ``otel_traces`` rows (and trace links).

Rows are the Collector ClickHouse exporter's: IDs in lowercase hex ('' when empty or all
zero), kinds and status codes by name ('Unspecified' / 'Unset' for numbers OTLP does not
define), a Duration of 0 for a span that ends before it starts, attribute maps of text
(schemas/otlp_sql.py). Enrichment: deprecated attribute names renamed (agents/semconv.py),
the correlation ID of the span's trace, and a rejected incoming ID kept in the span's
attributes with its reason. A record with a time past 2262 or text that is not UTF-8 is
refused whole, with the reason."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from agents.correlation import REJECTED_REASON_ATTRIBUTE, REJECTED_VALUE_ATTRIBUTE, clue_keys
from agents.ingest.config import IngestConfig
from agents.ingest.correlating import CLUE, clue_groups, clue_sql, correlation_sql, link_rows, store_decisions
from agents.ingest.logic import decide
from agents.ingest.plan import BatchContext, Decided, Lookups
from agents.semconv import (
    DEPRECATED_STATEMENT,
    MASK,
    PLANS_COLUMNS,
    mask_sql_literals,
    plans_table,
    rename_plan,
    renamed_attributes_sql,
)
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
    span_kind,
    status_code,
    texts_valid,
    typed_values,
    value_text,
)
from schemas.otlp_wire import ATTRIBUTES, RECORD_COLUMN
from schemas.tables import TRACES_TABLE

_FLAT_COLUMNS = (
    "record UInt64, tenant String, res_num UInt32, scope_name String, scope_version String, "
    "trace_id String, span_id String, parent_span_id String, trace_state String, name String, kind Int32, "
    f"start_ns UInt64, end_ns UInt64, attrs {ATTRIBUTES}, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {ATTRIBUTES})), "
    f"links Array(Tuple(trace_id String, span_id String, trace_state String, attributes {ATTRIBUTES})), "
    f"status_message String, status_code Int32, attr_shape UInt64, clue {CLUE}, clue_hash UInt64, "
    "complex Array(String), "
    "refusal String"
)

_RESOURCES = "record UInt64, num UInt32, ResourceAttributes Map(String, String), ServiceName String"
# A record's resources, each with its number in the record: the flat table's spans and the
# resources' Join table are numbered by this one clause, so a span finds its own resource.
_RESOURCE_ROWS = "ARRAY JOIN resource_spans AS rs, arrayEnumerate(resource_spans) AS res_num"


class SpanPlan:
    """SQL and decisions of the traces signal."""

    signal: Signal = "traces"
    flat_columns = _FLAT_COLUMNS

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.keys = clue_keys(config.correlation)

    def flatten(self, nested: str, flat: str) -> str:
        max_ns = MAX_NANOS
        refusal = (
            f"multiIf(sp.start_time_unix_nano > {max_ns}, 'a span starts past 2262 (beyond DateTime64 nanoseconds)', "
            f"arrayExists(e -> e.time_unix_nano > {max_ns}, sp.events), "
            "'a span event is stamped past 2262 (beyond DateTime64 nanoseconds)', "
            f"NOT ({attributes_valid('rs.resource.attributes')} AND {attributes_valid('sp.attributes')} AND "
            f"{texts_valid('ss.scope.name', 'ss.scope.version', 'sp.name', 'sp.trace_state', 'sp.status.message')} "
            f"AND arrayAll(e -> isValidUTF8(e.name) AND {attributes_valid('e.attributes')}, sp.events) "
            f"AND arrayAll(l -> isValidUTF8(l.trace_state) AND {attributes_valid('l.attributes')}, sp.links)), "
            "'a span holds text that is not valid UTF-8', '')"
        )
        complex_keys = (f"arrayConcat({complex_values('rs.resource.attributes')}, {complex_values('sp.attributes')}, "
                        f"arrayFlatten(arrayMap(e -> {complex_values('e.attributes')}, sp.events)), "
                        f"arrayFlatten(arrayMap(l -> {complex_values('l.attributes')}, sp.links)))")
        return (
            f"INSERT INTO {flat} SELECT {RECORD_COLUMN}, "
            f"{attribute_text('rs.resource.attributes', TENANT_ATTRIBUTE, None)}, res_num, "
            f"ss.scope.name, ss.scope.version, {hex_id('sp.trace_id')}, {hex_id('sp.span_id')}, "
            f"{hex_id('sp.parent_span_id')}, sp.trace_state, sp.name, sp.kind, sp.start_time_unix_nano, "
            "sp.end_time_unix_nano, sp.attributes, sp.events, sp.links, sp.status.message, sp.status.code, "
            "sipHash64(arrayMap(kv -> kv.key, sp.attributes)), "
            f"{clue_sql('rs.resource.attributes', 'sp.attributes', self.keys)} AS clue, sipHash64(clue), "
            f"{complex_keys}, {refusal} "
            f"FROM {nested} {_RESOURCE_ROWS} ARRAY JOIN rs.scope_spans AS ss ARRAY JOIN ss.spans AS sp"
        )

    def flags(self, flat: str) -> None:
        return None  # what renaming needs is read with the batch's key lists (decide)

    async def decide(self, batch: BatchContext, flags: Mapping[str, Any]) -> Decided:
        excluded = {"excluded": sorted(batch.excluded)}
        where = f"FROM {batch.flat} WHERE refusal = '' AND record NOT IN {{excluded:Array(UInt64)}}"
        facts = await batch.query(
            "SELECT tenant, trace_id, clue_hash, "
            f"any(({typed_values('clue.resource')}, {typed_values('clue.record')})) AS clue, "
            f"min(start_ns) AS first_ns, max(start_ns) AS last_ns, count() AS rows {where} "
            "GROUP BY tenant, trace_id, clue_hash", excluded)
        groups = clue_groups(facts)
        known = await batch.known({(g.tenant, g.trace_id) for g in groups if g.trace_id})
        decisions = decide(groups, known, batch.config.correlation)
        decisions.counts["spans"] += sum(g.rows for g in groups)
        lookups = Lookups(complex=batch.complex_table, **await store_decisions(batch, decisions))
        renames, masks, rewritten = await self._renames(batch, where, excluded)
        decisions.counts["semconv_rewritten"] += rewritten
        statements = await self._statements(batch) if masks else None
        lookups = Lookups(**{**lookups.__dict__, "renames": renames, "statements": statements,
                             "resources": await self._resources(batch)})
        return Decided(lookups, decisions.updates, link_rows(decisions), counts=decisions.counts)

    async def _renames(self, batch: BatchContext, where: str, excluded: Mapping[str, Any]) -> tuple[str, bool, int]:
        """The Join table of the batch's rename plans, one per distinct list of span
        attribute keys; whether any masks a statement; how many deprecated keys were
        renamed (counted per span, as normalize_attributes reports them)."""
        shapes = await batch.query(f"SELECT attr_shape, any(arrayMap(kv -> kv.key, attrs)) AS keys, "
                                   f"count() AS rows {where} GROUP BY attr_shape", excluded)
        keys = shapes.column("keys").to_pylist()
        plans = [rename_plan(names) for names in keys]
        rewritten = sum(len(plan.rewritten) * rows for plan, rows in zip(plans, shapes.column("rows").to_pylist(),
                                                                           strict=True))
        table = plans_table(shapes.column("attr_shape").to_pylist(), plans, [len(names) for names in keys])
        renames = await batch.lookup("renames", PLANS_COLUMNS, "Shape", table)
        return renames, any(MASK in plan.steps for plan in plans), rewritten

    async def _resources(self, batch: BatchContext) -> str:
        """The Join table of the batch's resources: their attribute map and service name,
        built once per resource, not once per span (that took a sixth of the output
        SELECT on 512-span records, and copying the attributes to every flat row more)."""
        attrs, cx = "rs.resource.attributes", batch.complex_table
        found = await batch.query(
            f"SELECT {RECORD_COLUMN} AS record, res_num AS num, {attribute_map(attrs, cx)} AS ResourceAttributes, "
            f"{attribute_text(attrs, 'service.name', cx)} AS ServiceName FROM {batch.nested} {_RESOURCE_ROWS}")
        return await batch.lookup("resources", _RESOURCES, "record, num", found)

    async def _statements(self, batch: BatchContext) -> str:
        found = await batch.query(
            f"SELECT DISTINCT {attribute_text('attrs', DEPRECATED_STATEMENT, batch.complex_table)} AS Statement "
            f"FROM {batch.flat} WHERE refusal = '' "
            f"AND has(arrayMap(kv -> kv.key, attrs), {quote(DEPRECATED_STATEMENT)})")
        statements = found.column("Statement").to_pylist()
        masked = pa.table({"Statement": statements, "Masked": [mask_sql_literals(s) for s in statements]})
        return await batch.lookup("statements", "Statement String, Masked String", "Statement", masked)

    def outputs(self, flat: str, lookups: Lookups) -> dict[str, str]:
        cx = lookups.complex
        resources = lookups.resources
        if lookups.renames is None or resources is None:
            raise RuntimeError("spans are selected after decide, which stores their resources and rename plans")
        steps, span_attrs = renamed_attributes_sql("span_texts", "attr_shape", lookups.renames, lookups.statements)
        if lookups.clues:
            reason = f"joinGet('{lookups.clues}', 'RejectedReason', clue_hash)"
            value = f"joinGet('{lookups.clues}', 'RejectedValue', clue_hash)"
            span_attrs = (f"if({reason} != '', mapUpdate({span_attrs}, map({quote(REJECTED_REASON_ATTRIBUTE)}, "
                          f"{reason}, {quote(REJECTED_VALUE_ATTRIBUTE)}, {value})), {span_attrs})")
        correlation = correlation_sql(lookups, "span_id", "start_ns")
        select = (
            f"SELECT record AS _record, {nanos('start_ns')} AS Timestamp, trace_id AS TraceId, span_id AS SpanId, "
            "parent_span_id AS ParentSpanId, trace_state AS TraceState, name AS SpanName, "
            f"{span_kind('kind')} AS SpanKind, joinGet('{resources}', 'ServiceName', record, res_num) AS ServiceName, "
            f"joinGet('{resources}', 'ResourceAttributes', record, res_num) AS ResourceAttributes, "
            "scope_name AS ScopeName, "
            f"scope_version AS ScopeVersion, {span_attrs} AS SpanAttributes, "
            "toUInt64(if(end_ns > start_ns, end_ns - start_ns, 0)) AS Duration, "
            f"{status_code('status_code')} AS StatusCode, status_message AS StatusMessage, "
            f"arrayMap(e -> {nanos('e.time_unix_nano')}, events) AS `Events.Timestamp`, "
            "arrayMap(e -> e.name, events) AS `Events.Name`, "
            f"arrayMap(e -> {attribute_map('e.attributes', cx)}, events) AS `Events.Attributes`, "
            f"arrayMap(l -> {hex_id('l.trace_id')}, links) AS `Links.TraceId`, "
            f"arrayMap(l -> {hex_id('l.span_id')}, links) AS `Links.SpanId`, "
            "arrayMap(l -> l.trace_state, links) AS `Links.TraceState`, "
            f"arrayMap(l -> {attribute_map('l.attributes', cx)}, links) AS `Links.Attributes`, "
            f"{correlation} AS CorrelationId "
            # The span's values as text, then renamed by its keys' plan (renamed_attributes_sql).
            f"FROM (SELECT *, {', '.join(steps)} FROM (SELECT *, arrayMap(kv -> {value_text('kv.2', cx)}, attrs) "
            f"AS span_texts FROM {flat} WHERE refusal = '' AND record NOT IN {{excluded:Array(UInt64)}})) "
            "ORDER BY record"
        )
        return {TRACES_TABLE: select}
