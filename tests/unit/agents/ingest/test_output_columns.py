"""The ingest output has, for every table it writes, exactly the migrations' insertable
columns in DDL order (plus ``_record``, first), and so do the trace links it returns."""
from __future__ import annotations

import asyncio
import re

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
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

from agents.ingest.batch import Ingested
from agents.ingest.batching import RECORD
from schemas.ddl import MIGRATIONS_DIR
from schemas.tables import EXEMPLARS_TABLE, LOGS_TABLE, METRIC_TABLES, TRACE_LINKS_TABLE, TRACES_TABLE
from sinks.batches import rows_to_columns
from sinks.warehouse import Warehouse
from tests.support.ingesting import IngestedRows, ingest_rows, ingestor, raw, rows_of

# Read straight from the files, so this test does not depend on the migration runner.
_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS \$db\.(\w+)\s*\(")
_CREATE_AS = re.compile(r"CREATE TABLE IF NOT EXISTS \$db\.(\w+) AS \$db\.(\w+)")
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
        for match in _CREATE_AS.finditer(sql):  # a table with another's columns
            tables[match.group(1)] = list(tables[match.group(2)])
        for match in _ALTER.finditer(sql):  # ADD COLUMN [FIRST | AFTER name]
            columns = tables[match.group(1)]
            for item in _split_top_level(match.group(2)):
                added = _ADD.match(item)
                if added is None or " MATERIALIZED " in f" {item} ":
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


@pytest.fixture(scope="module")
def metrics_ingested(ingest_warehouse: Warehouse) -> Ingested:
    return asyncio.run(ingestor(ingest_warehouse).ingest("metrics", [raw(every_metric_kind())]))


@pytest.fixture(scope="module")
def metrics_out(metrics_ingested: Ingested) -> IngestedRows:
    return rows_of(metrics_ingested)


def test_span_rows_have_every_otel_traces_column_in_ddl_order(ingest_warehouse: Warehouse) -> None:
    spans = [Span(name="a", trace_id=b"\1" * 16, span_id=b"\2" * 8)]
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    out = ingest_rows(ingest_warehouse, "traces", [req])
    [row] = out.rows(TRACES_TABLE)
    assert list(row) == DDL["otel_traces"]
    assert len(DDL["otel_traces"]) == 22 + 1  # the Collector's 22 plus CorrelationId
    # The trace links the batch stores first are rows Python builds: the same rule.
    [link] = out.links
    assert list(link) == DDL[TRACE_LINKS_TABLE]


def test_log_rows_have_every_insertable_otel_logs_column_in_ddl_order(ingest_warehouse: Warehouse) -> None:
    req = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[
        LogRecord(trace_id=b"\1" * 16)])])])
    out = ingest_rows(ingest_warehouse, "logs", [req])
    [row] = out.rows(LOGS_TABLE)
    assert list(row) == DDL["otel_logs"]
    [link] = out.links
    assert list(link) == DDL[TRACE_LINKS_TABLE]


@pytest.mark.parametrize("table", METRIC_TABLES)
def test_metric_rows_have_every_column_in_ddl_order(metrics_out: IngestedRows, table: str) -> None:
    [row] = metrics_out.rows(table)
    assert list(row) == DDL[table]


def test_exemplar_rows_have_every_metric_exemplars_column_in_ddl_order(metrics_out: IngestedRows) -> None:
    [row] = metrics_out.rows(EXEMPLARS_TABLE)
    assert list(row) == DDL["metric_exemplars"]


def test_every_output_table_leads_with_the_record_column(metrics_ingested: Ingested) -> None:
    assert sorted(metrics_ingested.tables) == sorted([*METRIC_TABLES, EXEMPLARS_TABLE])
    for name, table in metrics_ingested.tables.items():
        assert table.column_names == [RECORD, *DDL[name]], name


def test_rows_of_decoded_spans_as_columns_have_equal_lengths(ingest_warehouse: Warehouse) -> None:
    spans = [Span(name=str(i)) for i in range(3)]
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    columns = rows_to_columns(ingest_rows(ingest_warehouse, "traces", [req]).rows(TRACES_TABLE))
    assert list(columns) == DDL["otel_traces"]
    assert {len(values) for values in columns.values()} == {3}
    assert columns["SpanName"] == ["0", "1", "2"]
