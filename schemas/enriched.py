"""The enriched-topic record: rows per ClickHouse table, as orjson."""
from __future__ import annotations

from typing import Any, Literal, Mapping

import orjson

from core.errors import DecodeError

Signal = Literal["spans", "logs", "metrics"]
# The table rows of each signal go to when they carry no "_table" of their own.
DEFAULT_TABLE: dict[str, str] = {"spans": "otel_traces", "logs": "otel_logs"}
LINKS_TABLE = "ollystack_trace_links"
TABLES = frozenset({
    "otel_traces", "otel_logs", "otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram",
    "otel_metrics_exp_histogram", "otel_metrics_summary", "metric_exemplars", LINKS_TABLE,
})


def encode_enriched(signal: Signal, rows: list[dict[str, Any]], links: list[dict[str, Any]]) -> bytes:
    """One enriched record: the rows of one raw record and the trace links it set."""
    return orjson.dumps({"v": 1, "signal": signal, "rows": rows, "links": links})


def decode_enriched(value: bytes) -> dict[str, list[dict[str, Any]]]:
    """Table name -> rows of one enriched record. Raises DecodeError for anything else."""
    try:
        data = orjson.loads(value)
        signal, rows, links = data["signal"], data["rows"], data["links"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise DecodeError(f"not an enriched record: {exc}") from None
    return rows_by_table(signal, rows, links)


def rows_by_table(signal: str, rows: list[dict[str, Any]], links: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Enriched rows of one record sorted into their tables; DecodeError for an unknown table."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        table = row.pop("_table", None) or DEFAULT_TABLE.get(signal)
        if table not in TABLES:
            raise DecodeError(f"enriched row for unknown table {table!r}")
        tables.setdefault(table, []).append(row)
    if links:
        tables[LINKS_TABLE] = list(links)
    return tables


def merge_tables(parts: list[Mapping[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of several enriched records, per table, in record order."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for table, rows in part.items():
            merged.setdefault(table, []).extend(rows)
    return merged
