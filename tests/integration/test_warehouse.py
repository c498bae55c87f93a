"""The warehouse on the real embedded engine: idempotent schema, inserts, bound parameters,
de-duplicated retries and the correlation index; Arrow inserts on a ClickHouse server too
when OLLYSTACK_CLICKHOUSE_URL is set."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from agents.ingest.batching import RECORD
from core.errors import WarehouseError
from core.settings import ClickHouseSettings
from sinks.backend import open_warehouse
from sinks.migrations import applied_versions, load_migrations, migrate
from sinks.warehouse import Warehouse
from tests.support.builders import span, traces_request
from tests.support.ingesting import ingestor, plain_rows
from tests.support.warehouses import migrated_warehouse

T0 = 1_700_000_000_000_000_000
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def spans(n: int, correlation_id: str, *, error_at: int = -1, trace: str = TRACE) -> dict[str, list]:
    return {
        "Timestamp": [T0 + i * 1_000_000 for i in range(n)],
        "TraceId": [trace] * n,
        "SpanId": [f"{i:016x}" for i in range(n)],
        "ParentSpanId": [""] + [f"{0:016x}"] * (n - 1),
        "SpanName": ["GET /orders"] * n,
        "SpanKind": ["Server"] * n,
        "ServiceName": ["api-gateway" if i % 2 else "order-service" for i in range(n)],
        "SpanAttributes": [{"http.request.method": "GET"}] * n,
        "Duration": [1_000 * (i + 1) for i in range(n)],
        "StatusCode": ["Error" if i == error_at else "Ok" for i in range(n)],
        "Events.Timestamp": [[T0]] * n,
        "Events.Name": [["cache miss"]] * n,
        "Events.Attributes": [[{"k": "v"}]] * n,
        "CorrelationId": [correlation_id] * n,
    }


def test_the_schema_applies_twice_without_change(chdb_dir: Path, unique: str) -> None:
    wh = open_warehouse(ClickHouseSettings(database=unique), chdb_dir)
    try:
        first = migrate(wh, ClickHouseSettings())
        assert len(first) == len(load_migrations(unique, ClickHouseSettings()))
        tables = {r["name"] for r in wh.query("SELECT name FROM system.tables WHERE database = {d:String}",
                                              {"d": unique})}
        assert migrate(wh, ClickHouseSettings()) == []
        again = {r["name"] for r in wh.query("SELECT name FROM system.tables WHERE database = {d:String}",
                                             {"d": unique})}
        assert tables == again
        assert {"otel_traces", "otel_logs", "otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram",
                "otel_metrics_exp_histogram", "otel_metrics_summary", "otel_traces_trace_id_ts",
                "ollystack_correlation_index", "metric_exemplars", "ollystack_service_edges"} <= tables
        assert applied_versions(wh) == {m.version for m in load_migrations(unique, ClickHouseSettings())}
    finally:
        wh.execute(f"DROP DATABASE IF EXISTS {unique} SYNC")


@pytest.mark.parametrize("ttl", [{}, {"traces_ttl_days": 7, "logs_ttl_days": 3}])
def test_a_test_database_copied_from_the_template_is_a_migrated_one(chdb_dir: Path, unique: str,
                                                                     ttl: dict[str, int]) -> None:
    """The `warehouse` fixture's copy (tests/support/warehouses.py) holds what migrate() leaves."""

    def schema(wh: Warehouse) -> list[dict[str, object]]:
        rows = wh.query("SELECT name, engine_full, create_table_query FROM system.tables "
                        "WHERE database = {d:String} ORDER BY name", {"d": wh.database})
        columns = wh.query("SELECT table, name, type, default_expression, compression_codec FROM system.columns "
                           "WHERE database = {d:String} ORDER BY table, position", {"d": wh.database})
        versions = wh.query(f"SELECT Version, Name FROM {wh.database}.ollystack_schema_migrations ORDER BY Version")
        return [{k: str(v).replace(f"{wh.database}.", "db.") for k, v in r.items()} for r in rows + columns + versions]

    settings = ClickHouseSettings(database=f"{unique}_real", **ttl)
    real = open_warehouse(settings, chdb_dir)
    try:
        migrate(real, settings)
        copied_settings = ClickHouseSettings(database=unique, **ttl)
        with migrated_warehouse(copied_settings, chdb_dir) as copied:
            assert schema(copied) == schema(real)
            assert migrate(copied, copied_settings) == []  # nor does the retention check alter a TTL
            assert schema(copied) == schema(real)
    finally:
        real.execute(f"DROP DATABASE IF EXISTS {settings.database} SYNC")


def test_traces_table_has_the_collector_columns_and_types(warehouse: Warehouse) -> None:
    cols = {r["name"]: r["type"] for r in warehouse.query(
        "SELECT name, type FROM system.columns WHERE database = {d:String} AND table = 'otel_traces'",
        {"d": warehouse.database})}
    assert cols["Timestamp"] == "DateTime64(9)"
    assert cols["SpanAttributes"] == "Map(LowCardinality(String), String)"
    assert cols["Duration"] == "UInt64"
    assert cols["Events.Timestamp"] == "Array(DateTime64(9))"
    assert cols["Links.TraceId"] == "Array(String)"
    assert cols["CorrelationId"] == "String"
    indexes = {r["name"] for r in warehouse.query(
        "SELECT name FROM system.data_skipping_indices WHERE database = {d:String} AND table = 'otel_traces'",
        {"d": warehouse.database})}
    assert {"idx_trace_id", "idx_correlation_id", "idx_duration"} <= indexes


def test_correlation_index_summarises_spans_and_logs(warehouse: Warehouse) -> None:
    db = warehouse.database
    warehouse.insert("otel_traces", spans(4, "req-123", error_at=2), dedup_token="spans:0:0-3")
    warehouse.insert("otel_logs", {
        "Timestamp": [T0 + 5_000_000, T0 + 6_000_000], "TraceId": [TRACE] * 2, "SpanId": ["0" * 15 + "1"] * 2,
        "SeverityText": ["INFO", "ERROR"], "SeverityNumber": [9, 17], "ServiceName": ["order-service"] * 2,
        "Body": ["order placed", "payment failed"], "CorrelationId": ["req-123"] * 2,
    })
    row = warehouse.query(
        f"SELECT min(FirstSeen) AS first, max(LastSeen) AS last, groupUniqArrayArray(Services) AS services, "
        f"uniqExactMerge(Spans) AS spans, uniqExactMerge(Logs) AS logs, uniqExactMerge(ErrorSpans) AS error_spans, "
        f"uniqExactMerge(ErrorLogs) AS error_logs, max(MaxDurationNs) AS max_duration "
        f"FROM {db}.ollystack_correlation_index WHERE CorrelationId = {{id:String}}",
        {"id": "req-123"},
    )[0]
    assert sorted(row["services"]) == ["api-gateway", "order-service"]
    assert (row["spans"], row["logs"], row["error_spans"], row["error_logs"]) == (4, 2, 1, 1)
    assert row["max_duration"] == 4000
    assert row["first"] == "2023-11-14 22:13:20.000000000"
    assert row["last"] == "2023-11-14 22:13:20.006000000"


def test_a_retried_block_is_stored_and_counted_once(warehouse: Warehouse) -> None:
    db = warehouse.database
    for _ in range(3):
        warehouse.insert("otel_traces", spans(5, "req-dup"), dedup_token="otlp_spans:0:100-104")
    assert warehouse.query(f"SELECT count() AS n FROM {db}.otel_traces")[0]["n"] == 5
    # A different block with the same spans (a replay) is collapsed at read time.
    warehouse.insert("otel_traces", spans(5, "req-dup"), dedup_token="replay:0:100-104")
    assert warehouse.query(f"SELECT count() AS n FROM {db}.otel_traces FINAL")[0]["n"] == 5
    counted = warehouse.query(
        f"SELECT uniqExactMerge(Spans) AS n FROM {db}.ollystack_correlation_index WHERE CorrelationId = {{c:String}}",
        {"c": "req-dup"})
    assert counted[0]["n"] == 5


@pytest.mark.parametrize(
    "hostile",
    ["' OR 1=1 --", "x'); DROP TABLE otel_traces; --", "\\' UNION SELECT 1", "{id:String}", "a" * 10_000],
    ids=["or-true", "drop-table", "escaped-quote", "param-syntax", "ten-kb"],
)
def test_values_travel_as_bound_parameters(warehouse: Warehouse, hostile: str) -> None:
    db = warehouse.database
    warehouse.insert("otel_traces", spans(2, "safe"))
    rows = warehouse.query(
        f"SELECT count() AS n FROM {db}.otel_traces WHERE CorrelationId = {{id:String}}", {"id": hostile})
    assert rows == [{"n": 0}]
    assert warehouse.query(f"SELECT count() AS n FROM {db}.otel_traces")[0]["n"] == 2


def test_bad_input_is_a_warehouse_error_naming_the_problem(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="no columns"):
        warehouse.insert("otel_traces", {"NoSuchColumn": [1]})
    with pytest.raises(WarehouseError, match="differ in length"):
        warehouse.insert("otel_traces", {"TraceId": ["a", "b"], "SpanId": ["c"]})
    with pytest.raises(WarehouseError, match="plain identifier"):
        warehouse.insert("otel_traces; DROP TABLE x", {"TraceId": ["a"]})
    with pytest.raises(WarehouseError, match="Syntax error"):
        warehouse.query("SELEC 1")


def test_unknown_url_scheme_is_a_config_error(tmp_path: Path) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="OLLYSTACK_CLICKHOUSE_URL"):
        open_warehouse(ClickHouseSettings(url="postgres://x"), tmp_path)


def test_parameters_do_not_cross_between_threads(warehouse: Warehouse) -> None:
    # chDB shares one session per process; without the backend's lock, concurrent
    # parameterised queries were seen running with another thread's values.
    from concurrent.futures import ThreadPoolExecutor

    def ask(i: int) -> str:
        return warehouse.query("SELECT {tenant:String} AS tenant", {"tenant": f"tenant-{i}"})[0]["tenant"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(ask, range(200)))
    assert answers == [f"tenant-{i}" for i in range(200)]


@pytest.fixture(params=["chdb", "server"])
def backend(request: pytest.FixtureRequest, chdb_dir: Path, unique: str) -> Iterator[Warehouse]:
    """A migrated database on chDB, and on the ClickHouse server OLLYSTACK_CLICKHOUSE_URL
    names when it is set (skipped when it is not: no server can run here)."""
    url = os.environ.get("OLLYSTACK_CLICKHOUSE_URL", "") if request.param == "server" else ""
    if request.param == "server" and not url:
        pytest.skip("OLLYSTACK_CLICKHOUSE_URL is not set: no ClickHouse server to test")
    settings = ClickHouseSettings(url=SecretStr(url), database=f"{unique}_{request.param}")
    with migrated_warehouse(settings, chdb_dir) as wh:
        yield wh


def test_the_ingest_stage_rows_are_stored_as_they_are_on_either_backend(warehouse: Warehouse,
                                                                         backend: Warehouse) -> None:
    spans_ = [span(TRACE, "00f067aa0ba902b7", name="GET /orders", error=True, http__method="GET",
                   http__status_code=503, tags=["a", "b"]),
              span(TRACE, "00f067aa0ba902b8", parent="00f067aa0ba902b7", name="SELECT", correlation_id="req-42")]
    built = ingestor(warehouse)
    tables = asyncio.run(built.ingest("traces", [traces_request("orders", spans_, tenant__id="acme")])).tables
    ingested = tables["otel_traces"]
    rows = ingested.drop_columns([RECORD])
    assert backend.insert_arrow("otel_traces", rows, dedup_token="arrow:0:0-0") == 2
    assert backend.insert_arrow("otel_traces", rows, dedup_token="arrow:0:0-0") == 2  # a retry: dropped
    names = ", ".join(f"`{n}`" for n in rows.column_names)
    stored = backend.query(f"SELECT {names} FROM {backend.database}.otel_traces ORDER BY SpanId")
    assert len(stored) == 2
    expected = plain_rows(ingested)[0]
    for got, want in zip(stored, expected, strict=True):
        assert got["SpanAttributes"] == want["SpanAttributes"]
        assert got["ResourceAttributes"] == want["ResourceAttributes"]
        assert (got["CorrelationId"], got["StatusCode"], got["Duration"]) == (
            want["CorrelationId"], want["StatusCode"], want["Duration"])
    assert stored[0]["SpanAttributes"]["http.response.status_code"] == "503"  # renamed by semconv
    assert stored[1]["CorrelationId"] == "req-42"
