"""Tests for schemas.rows: row keys match the migrations' insertable columns, and to_columns."""

from __future__ import annotations

import re
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from core.errors import RowsRefusedError
from schemas.ddl import MIGRATIONS_DIR
from schemas.rows import (
    EXEMPLAR_COLUMNS,
    LOG_COLUMNS,
    SPAN_COLUMNS,
    decode_logs,
    decode_metrics,
    decode_spans,
    exemplar_rows,
    to_columns,
)

# Read straight from the files, so this test does not depend on the migration runner.
_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS \$db\.(\w+)\s*\(")
_ALTER = re.compile(r"ALTER TABLE \$db\.(\w+)\s+(.*?);", re.S)
_ADD = re.compile(r"ADD COLUMN IF NOT EXISTS (\w+) .*?(?: (FIRST)| AFTER (\w+))?$", re.S)


def _split_top_level(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:index])
            start = index + 1
    parts.append(body[start:])
    return [part.strip() for part in parts if part.strip()]


def _table_body(sql: str, open_paren: int) -> str:
    depth = 0
    for index in range(open_paren, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[index], 0)
        if depth == 0:
            return sql[open_paren + 1 : index]
    raise AssertionError("unbalanced DDL")


def insertable_columns() -> dict[str, list[str]]:
    """Table -> columns an INSERT gives, read from the migrations: no INDEX or MATERIALIZED
    entries, Nested columns flattened as ``Name.Sub``."""
    tables: dict[str, list[str]] = {}
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        sql = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
        for match in _CREATE.finditer(sql):
            columns: list[str] = []
            for item in _split_top_level(_table_body(sql, match.end() - 1)):
                name, _, column_type = item.partition(" ")
                if name == "INDEX" or " MATERIALIZED " in f" {column_type} ":
                    continue
                name = name.strip("`")
                if column_type.startswith("Nested"):
                    inner = _table_body(column_type, column_type.index("("))
                    columns.extend(f"{name}.{sub.split()[0]}" for sub in _split_top_level(inner))
                else:
                    columns.append(name)
            tables[match.group(1)] = columns
        for match in _ALTER.finditer(sql):  # ADD COLUMN [FIRST | AFTER name]
            columns = tables[match.group(1)]
            for item in _split_top_level(match.group(2)):
                added = _ADD.match(item)
                if added is None:
                    continue
                name, first, after = added.groups()
                columns.insert(0 if first else columns.index(after) + 1 if after else len(columns), name)
    return tables


DDL = insertable_columns()


def every_metric_kind() -> ExportMetricsServiceRequest:
    metrics = [
        Metric(name="g", gauge=Gauge(data_points=[NumberDataPoint(as_int=1, exemplars=[Exemplar(as_int=1)])])),
        Metric(name="s", sum=Sum(data_points=[NumberDataPoint(as_double=1.0)])),
        Metric(name="h", histogram=Histogram(data_points=[HistogramDataPoint(count=1)])),
        Metric(name="e", exponential_histogram=ExponentialHistogram(
            data_points=[ExponentialHistogramDataPoint(count=1)])),
        Metric(name="q", summary=Summary(data_points=[SummaryDataPoint(count=1)])),
    ]
    scope_metrics = [ScopeMetrics(metrics=metrics)]
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=scope_metrics)])


def test_span_rows_have_every_otel_traces_column_in_ddl_order() -> None:
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(name="a")])])])
    [record] = decode_spans(req)
    assert list(record.row) == list(SPAN_COLUMNS) == DDL["otel_traces"]
    assert len(DDL["otel_traces"]) == 22 + 1  # the Collector's 22 plus CorrelationId


def test_log_rows_have_every_insertable_otel_logs_column_in_ddl_order() -> None:
    req = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord()])])])
    [record] = decode_logs(req)
    assert list(record.row) == list(LOG_COLUMNS) == DDL["otel_logs"]


@pytest.mark.parametrize(
    "table",
    ["otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram", "otel_metrics_exp_histogram",
     "otel_metrics_summary"],
)
def test_metric_rows_have_every_column_in_ddl_order(table: str) -> None:
    [row] = decode_metrics(every_metric_kind())[table]
    assert list(row) == DDL[table]


def test_exemplar_rows_have_every_metric_exemplars_column_in_ddl_order() -> None:
    [row] = exemplar_rows(decode_metrics(every_metric_kind()))
    assert list(row) == list(EXEMPLAR_COLUMNS) == DDL["metric_exemplars"]


def test_to_columns_is_column_major_in_first_row_key_order() -> None:
    shared = {"k": "v"}
    rows = [{"b": 1, "a": shared, "c": [1]}, {"a": {}, "c": [], "b": 2}]
    columns = to_columns(rows)
    assert columns == {"b": [1, 2], "a": [shared, {}], "c": [[1], []]}
    assert list(columns) == ["b", "a", "c"]
    assert columns["a"][0] is shared  # values are not copied


def test_to_columns_of_no_rows_is_empty() -> None:
    assert to_columns([]) == {}


def test_to_columns_of_decoded_spans_has_equal_lengths() -> None:
    spans = [Span(name=str(i)) for i in range(3)]
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    columns = to_columns([record.row for record in decode_spans(req)])
    assert list(columns) == list(SPAN_COLUMNS)
    assert {len(values) for values in columns.values()} == {3}
    assert columns["SpanName"] == ["0", "1", "2"]


MISMATCHED = [
    pytest.param([{"a": 1, "b": 2}, {"a": 1}], "lacks column 'b'", id="missing-column"),
    pytest.param([{"a": 1}, {"a": 1, "z": 2}], r"row 1 has columns the first row lacks: \['z'\]", id="extra-column"),
    pytest.param([{"a": 1, "b": 2}, {"a": 1, "c": 2}], "lacks column 'b'", id="different-column"),
]


@pytest.mark.parametrize(("rows", "message"), MISMATCHED)
def test_to_columns_rejects_rows_with_other_keys(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RowsRefusedError, match=message):
        to_columns(rows)
