"""The logs plan: staged ExportLogsServiceRequests -> ``otel_logs`` rows (and trace links).

Rows are the Collector ClickHouse exporter's: Timestamp is the record's time, or its
observed time when the time is 0; IDs in lowercase hex ('' when empty or all zero);
TraceFlags the low byte of the flags; the body and attributes as text
(schemas/otlp_sql.py). Enrichment: the severity made consistent (normalize_severity on the
number's low byte and the text, once per distinct pair), the correlation ID of the
record's trace (which a JSON or kvlist body can set), or for a record without a trace its
own valid ID or one generated from its time, service and body; a rejected incoming ID is
kept in the record's attributes with its reason. A record stamped past 2262 or holding
text that is not UTF-8 is refused whole, with the reason."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValueList

from agents.correlation import REJECTED_REASON_ATTRIBUTE, REJECTED_VALUE_ATTRIBUTE, clue_keys
from agents.ingest.config import IngestConfig
from agents.ingest.correlating import CLUE, clue_groups, clue_sql, correlation_sql, link_rows, store_decisions
from agents.ingest.logic import decide
from agents.ingest.plan import BatchContext, Decided, Lookups
from agents.semconv import normalize_severity
from core.tenancy import TENANT_ATTRIBUTE
from core.types import Signal
from schemas.otlp_sql import (
    ARRAY_PREFIX,
    KVLIST_PREFIX,
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
    typed_values,
    value_text,
)
from schemas.otlp_values import any_value_to_python
from schemas.otlp_wire import ANY_VALUE, ATTRIBUTES, RECORD_COLUMN
from schemas.tables import LOGS_TABLE

_FLAT_COLUMNS = (
    f"record UInt64, tenant String, res_attrs {ATTRIBUTES}, res_schema_url String, scope_name String, "
    f"scope_version String, scope_attrs {ATTRIBUTES}, scope_schema_url String, time_ns UInt64, "
    "trace_id String, span_id String, flags UInt8, severity_number UInt8, severity_text String, "
    f"body {ANY_VALUE}, attrs {ATTRIBUTES}, event_name String, clue {CLUE}, body_clue String, clue_hash UInt64, "
    "complex Array(String), refusal String"
)
# A body clue's first character says what follows: a string body's text, or the hex of a
# kvlist body's serialized bytes ('' when the body cannot hold a candidate).
_TEXT_BODY = "s"
# Characters JSON may write as a short escape (\" \\ \/ \b \f \n \r \t): a body key holding
# one may be spelled without its literal text.
_SHORT_ESCAPED = frozenset('"\\/\b\f\n\r\t')
# multiSearchAny takes at most 255 needles.
_MAX_NEEDLES = 255


def any_occurs(haystack: str, needles: tuple[str, ...]) -> str:
    """True when one of the constant ``needles`` occurs literally in ``haystack``."""
    if not needles:
        return "0"
    if len(needles) > _MAX_NEEDLES:
        return f"arrayExists(n -> position({haystack}, n) > 0, {string_array(needles)})"
    return f"multiSearchAny({haystack}, {string_array(needles)})"


def body_clue_sql(body: str, keys: tuple[str, ...]) -> str:
    """The body of a record as its clue when it could hold a candidate, else ''.

    A cheap screen, never a verdict (Python reads the body exactly, see typed_body): a
    string body is kept when it has a '{' and either holds a body key literally or holds
    an escape that could spell one; a kvlist body when a key occurs in its bytes (keys
    are stored there as their UTF-8 bytes)."""
    if not keys:
        return "''"
    text = f"{body}.string_value"
    escapable = any(c in _SHORT_ESCAPED or ord(c) < 0x20 for key in keys for c in key)
    escape = quote("\\" if escapable else "\\u")
    json_like = f"position({text}, '{{') > 0 AND ({any_occurs(text, keys)} OR position({text}, {escape}) > 0)"
    return (f"multiIf({body}.value = 'string_value' AND {json_like}, concat('{_TEXT_BODY}', {text}), "
            f"{body}.value = 'kvlist_value' AND {any_occurs(f'{body}.kvlist_value', keys)}, "
            f"concat('{KVLIST_PREFIX}', hex({body}.kvlist_value)), '')")


def typed_body(clue: str) -> object:
    """A body clue as find_correlation_id reads the body: a JSON-object text body as the
    object it holds (parsed here, once per distinct body: a Mapping body is read exactly as
    the JSON text of that object would be), a kvlist body as any_value_to_python gives it,
    None for anything that cannot hold a candidate. Never raises."""
    kind, payload = clue[:1], clue[1:]
    if kind == KVLIST_PREFIX:
        try:
            return any_value_to_python(AnyValue(kvlist_value=KeyValueList.FromString(bytes.fromhex(payload))))
        except (ProtobufDecodeError, ValueError, RecursionError):
            return None  # the batch refuses the record (see batch._screen): nothing to find
    if kind != _TEXT_BODY:
        return None
    stripped = payload.strip()
    if not stripped.startswith("{"):
        return None
    try:
        parsed = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


class LogPlan:
    """SQL and decisions of the logs signal."""

    signal: Signal = "logs"
    flat_columns = _FLAT_COLUMNS

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.keys = clue_keys(config.correlation)
        self.body_keys = tuple(config.correlation.body_keys)

    def flatten(self, nested: str, flat: str) -> str:
        time_ns = "if(lr.time_unix_nano != 0, lr.time_unix_nano, lr.observed_time_unix_nano)"
        texts = texts_valid("rs.schema_url", "ss.schema_url", "ss.scope.name", "ss.scope.version",
                            "lr.severity_text", "lr.body.string_value", "lr.event_name")
        refusal = (
            f"multiIf({time_ns} > {MAX_NANOS}, 'a log record is stamped past 2262 (beyond DateTime64 nanoseconds)', "
            f"NOT ({attributes_valid('rs.resource.attributes')} AND {attributes_valid('ss.scope.attributes')} AND "
            f"{attributes_valid('lr.attributes')} AND {texts}), 'a log record holds text that is not valid UTF-8', '')"
        )
        body_complex = (f"multiIf(lr.body.value = 'array_value', [concat('{ARRAY_PREFIX}', hex(lr.body.array_value))], "
                        f"lr.body.value = 'kvlist_value', [concat('{KVLIST_PREFIX}', hex(lr.body.kvlist_value))], "
                        "CAST([] AS Array(String)))")
        complex_keys = (f"arrayConcat({complex_values('rs.resource.attributes')}, "
                        f"{complex_values('ss.scope.attributes')}, {complex_values('lr.attributes')}, {body_complex})")
        return (
            f"INSERT INTO {flat} SELECT {RECORD_COLUMN}, "
            f"{attribute_text('rs.resource.attributes', TENANT_ATTRIBUTE, None)}, rs.resource.attributes, "
            "rs.schema_url, ss.scope.name, ss.scope.version, ss.scope.attributes, ss.schema_url, "
            f"{time_ns}, {hex_id('lr.trace_id')}, {hex_id('lr.span_id')}, bitAnd(lr.flags, 255), "
            # The low byte, as the Collector's uint8 conversion keeps it (a hostile enum
            # cannot fail the UInt8 insert); normalised afterwards, see decide.
            "bitAnd(lr.severity_number, 255), lr.severity_text, lr.body, lr.attributes, lr.event_name, "
            f"{clue_sql('rs.resource.attributes', 'lr.attributes', self.keys)} AS clue, "
            f"{body_clue_sql('lr.body', self.body_keys)} AS body_clue, sipHash64(clue, body_clue), "
            f"{complex_keys}, {refusal} "
            f"FROM {nested} ARRAY JOIN resource_logs AS rs ARRAY JOIN rs.scope_logs AS ss "
            "ARRAY JOIN ss.log_records AS lr"
        )

    def flags(self, flat: str) -> None:
        return None  # nothing optional: every batch decides severities and correlation IDs

    async def decide(self, batch: BatchContext, flags: Mapping[str, Any]) -> Decided:
        where = f"FROM {batch.flat} WHERE refusal = '' AND record NOT IN {{excluded:Array(UInt64)}}"
        excluded = {"excluded": sorted(batch.excluded)}
        facts = await batch.query(
            "SELECT tenant, trace_id, clue_hash, "
            f"any(({typed_values('clue.resource')}, {typed_values('clue.record')})) AS clue, "
            "any(body_clue) AS body, min(time_ns) AS first_ns, max(time_ns) AS last_ns, count() AS rows "
            f"{where} GROUP BY tenant, trace_id, clue_hash", excluded)
        parsed: dict[str, object] = {}  # groups of many traces share a body: parse it once
        bodies = []
        for clue in facts.column("body").to_pylist():
            if clue not in parsed:
                parsed[clue] = typed_body(clue)
            bodies.append(parsed[clue])
        groups = clue_groups(facts, bodies)
        known = await batch.known({(g.tenant, g.trace_id) for g in groups if g.trace_id})
        decisions = decide(groups, known, batch.config.correlation)
        decisions.counts["logs"] += sum(g.rows for g in groups)
        severities = await self._severities(batch, where, excluded)
        lookups = Lookups(complex=batch.complex_table, severities=severities, **await store_decisions(batch, decisions))
        return Decided(lookups, decisions.updates, link_rows(decisions), counts=decisions.counts)

    async def _severities(self, batch: BatchContext, where: str, excluded: Mapping[str, Any]) -> str:
        found = await batch.query(f"SELECT DISTINCT severity_number AS Number, severity_text AS Text {where}", excluded)
        pairs = list(zip(found.column("Number").to_pylist(), found.column("Text").to_pylist(), strict=True))
        normalized = [normalize_severity(number, text) for number, text in pairs]
        data = pa.table({"Number": pa.array([p[0] for p in pairs], pa.uint8()), "Text": [p[1] for p in pairs],
                         "SeverityNumber": pa.array([n[0] for n in normalized], pa.uint8()),
                         "SeverityText": [n[1] for n in normalized]})
        return await batch.lookup("severities", "Number UInt8, Text String, SeverityNumber UInt8, SeverityText String",
                                  "Number, Text", data)

    def outputs(self, flat: str, lookups: Lookups) -> dict[str, str]:
        cx = lookups.complex
        log_attrs = "log_map"
        if lookups.clues:
            reason = f"joinGet('{lookups.clues}', 'RejectedReason', clue_hash)"
            value = f"joinGet('{lookups.clues}', 'RejectedValue', clue_hash)"
            log_attrs = (f"if({reason} != '', mapUpdate(log_map, map({quote(REJECTED_REASON_ATTRIBUTE)}, "
                         f"{reason}, {quote(REJECTED_VALUE_ATTRIBUTE)}, {value})), log_map)")
        severity_number, severity_text = "severity_number", "severity_text"
        if lookups.severities:
            severity_number = f"joinGet('{lookups.severities}', 'SeverityNumber', severity_number, severity_text)"
            severity_text = f"joinGet('{lookups.severities}', 'SeverityText', severity_number, severity_text)"
        # The identity of a record without a trace, as the row holds it: its Timestamp in
        # nanoseconds, service and body text.
        identity = "concat(toString(time_ns), ':', service_name, ':', body_text)"
        correlation = correlation_sql(lookups, identity, "time_ns")
        select = (
            f"SELECT record AS _record, {nanos('time_ns')} AS Timestamp, trace_id AS TraceId, span_id AS SpanId, "
            f"flags AS TraceFlags, {severity_text} AS SeverityText, {severity_number} AS SeverityNumber, "
            "service_name AS ServiceName, body_text AS Body, res_schema_url AS ResourceSchemaUrl, "
            f"{attribute_map('res_attrs', cx)} AS ResourceAttributes, scope_schema_url AS ScopeSchemaUrl, "
            "scope_name AS ScopeName, scope_version AS ScopeVersion, "
            f"{attribute_map('scope_attrs', cx)} AS ScopeAttributes, {log_attrs} AS LogAttributes, "
            f"event_name AS EventName, {correlation} AS CorrelationId "
            # Named once here, used twice above (the body and service in the identity too).
            f"FROM (SELECT *, {value_text('body', cx)} AS body_text, "
            f"{attribute_text('res_attrs', 'service.name', cx)} AS service_name, "
            f"{attribute_map('attrs', cx)} AS log_map FROM {flat} "
            "WHERE refusal = '' AND record NOT IN {excluded:Array(UInt64)}) ORDER BY record"
        )
        return {LOGS_TABLE: select}
