"""The NLQ guard: hostile queries refused with the rule they broke; allowed ones rewritten to
the caller's tenant, a LIMIT and the guard's own settings."""
from __future__ import annotations

import pytest
import sqlglot

from api.nlq.guard import Caps, GuardError, guard_sql
from api.nlq.schema import ALLOWED_TABLES

DB = "olly"
CAPS = Caps(max_rows=100, max_execution_s=5, max_memory_bytes=100_000_000)

HOSTILE: list[tuple[str, str, str]] = [
    # (id, query, rule)
    ("insert", "INSERT INTO otel_traces (TraceId) VALUES ('x')", "select_only"),
    ("insert-select", "INSERT INTO otel_logs SELECT * FROM otel_logs", "select_only"),
    ("delete", "DELETE FROM otel_traces WHERE 1", "select_only"),
    ("alter-delete", "ALTER TABLE otel_traces DELETE WHERE 1", "select_only"),
    ("alter-update", "ALTER TABLE otel_traces UPDATE ServiceName = 'x' WHERE 1", "select_only"),
    ("update", "UPDATE otel_traces SET ServiceName = 'x'", "select_only"),
    ("drop-table", "DROP TABLE otel_traces", "select_only"),
    ("drop-database", "DROP DATABASE olly", "select_only"),
    ("truncate", "TRUNCATE TABLE otel_logs", "select_only"),
    ("create-table", "CREATE TABLE x (a Int8) ENGINE = Memory", "select_only"),
    ("create-as-select", "CREATE TABLE x ENGINE = Memory AS SELECT * FROM otel_traces", "select_only"),
    ("rename", "RENAME TABLE otel_traces TO x", "select_only"),
    ("optimize", "OPTIMIZE TABLE otel_traces FINAL", "select_only"),
    ("system-command", "SYSTEM SHUTDOWN", "select_only"),
    ("kill", "KILL QUERY WHERE 1", "select_only"),
    ("set", "SET readonly = 0", "select_only"),
    ("grant", "GRANT ALL ON *.* TO default", "select_only"),
    ("attach", "ATTACH TABLE x FROM '/tmp/x'", "select_only"),
    ("show", "SHOW TABLES", "select_only"),
    ("describe", "DESCRIBE TABLE otel_traces", "select_only"),
    ("explain", "EXPLAIN SELECT 1", "select_only"),
    ("stacked", "SELECT 1 FROM otel_traces; DROP TABLE otel_traces", "one_statement"),
    ("stacked-selects", "SELECT ServiceName FROM otel_traces; SELECT Body FROM otel_logs", "one_statement"),
    ("comment-hides-statement", "SELECT ServiceName FROM otel_traces /* ; DROP TABLE otel_traces */", "comment"),
    ("line-comment", "SELECT ServiceName FROM otel_traces -- ; DROP TABLE otel_traces", "comment"),
    ("hash-comment", "SELECT ServiceName FROM otel_traces # WHERE tenant", "comment"),
    ("comment-before-where", "SELECT ServiceName FROM otel_traces /* tenant */ WHERE 1", "comment"),
    ("table-function-file", "SELECT * FROM file('/etc/passwd', 'CSV', 'a String')", "table_function"),
    ("table-function-url", "SELECT * FROM url('http://169.254.169.254/latest', 'CSV', 'a String')", "table_function"),
    ("table-function-remote", "SELECT * FROM remote('other:9000', default.otel_traces)", "table_function"),
    ("table-function-remote-secure", "SELECT * FROM remoteSecure('h:9440', olly.otel_traces)", "table_function"),
    ("table-function-s3", "SELECT * FROM s3('https://bucket/x.csv', 'CSV')", "table_function"),
    ("table-function-input", "SELECT * FROM input('a String')", "table_function"),
    ("table-function-cluster", "SELECT * FROM cluster('c', olly.otel_traces)", "table_function"),
    ("table-function-numbers", "SELECT * FROM numbers(1000000000000)", "table_function"),
    ("table-function-in-join", "SELECT * FROM otel_traces AS t JOIN file('x') AS f ON 1 = 1", "table_function"),
    ("table-function-in-cte", "WITH x AS (SELECT * FROM url('http://x', 'CSV')) SELECT * FROM x",
     "table_function"),
    ("scalar-file", "SELECT file('/etc/passwd') FROM otel_traces", "function"),
    ("dict-get", "SELECT dictGet('secrets', 'value', toUInt64(1)) FROM otel_traces", "function"),
    ("join-get", "SELECT joinGet('other', 'v', 1) FROM otel_traces", "function"),
    ("sleep", "SELECT sleepEachRow(3) FROM otel_traces", "function"),
    ("get-setting", "SELECT getSetting('readonly') FROM otel_traces", "function"),
    ("system-table", "SELECT * FROM system.tables", "system_table"),
    ("system-users", "SELECT name FROM system.users", "system_table"),
    ("system-uppercase", "SELECT * FROM SYSTEM.query_log", "system_table"),
    ("information-schema", "SELECT * FROM information_schema.tables", "system_table"),
    ("information-schema-upper", "SELECT * FROM INFORMATION_SCHEMA.COLUMNS", "system_table"),
    ("subquery-into-system",
     "SELECT ServiceName FROM otel_traces WHERE ServiceName IN (SELECT name FROM system.tables)",
     "system_table"),
    ("in-system-table", "SELECT ServiceName IN system.tables FROM otel_traces", "system_table"),
    ("join-system", "SELECT * FROM otel_traces AS t JOIN system.processes AS p ON 1 = 1", "system_table"),
    ("union-system", "SELECT ServiceName FROM otel_traces UNION ALL SELECT name FROM system.databases",
     "system_table"),
    ("cte-system", "WITH s AS (SELECT query FROM system.query_log) SELECT * FROM s", "system_table"),
    ("other-database", "SELECT * FROM default.otel_traces", "database"),
    ("other-database-join", "SELECT * FROM otel_traces AS t JOIN other.otel_logs AS l ON l.TraceId = t.TraceId",
     "database"),
    ("unknown-table", "SELECT * FROM users", "table"),
    ("migrations-table", "SELECT * FROM ollystack_schema_migrations", "table"),
    ("trace-links", "SELECT * FROM ollystack_trace_links", "table"),
    ("join-disallowed", "SELECT * FROM otel_traces AS t JOIN ollystack_trace_links AS l ON l.TraceId = t.TraceId",
     "table"),
    ("unknown-column", "SELECT password FROM otel_traces", "column"),
    ("virtual-column", "SELECT _part FROM otel_traces", "column"),
    ("column-of-unread-table", "SELECT Body FROM otel_traces", "column"),
    ("unknown-qualifier", "SELECT secret.x FROM otel_traces", "column"),
    ("settings-readonly", "SELECT ServiceName FROM otel_traces SETTINGS readonly = 0", "settings"),
    ("settings-memory", "SELECT ServiceName FROM otel_traces LIMIT 5 SETTINGS max_memory_usage = 0", "settings"),
    ("settings-in-subquery", "SELECT * FROM (SELECT ServiceName FROM otel_traces SETTINGS max_threads = 64)",
     "settings"),
    ("format", "SELECT ServiceName FROM otel_traces FORMAT TabSeparated", "format"),
    ("into-outfile", "SELECT ServiceName FROM otel_traces INTO OUTFILE '/tmp/x'", "into_outfile"),
    ("select-into", "SELECT ServiceName INTO other FROM otel_traces", "into"),
    ("huge-limit", "SELECT ServiceName FROM otel_traces LIMIT 100000000", "limit"),
    ("limit-just-over", "SELECT ServiceName FROM otel_traces LIMIT 101", "limit"),
    ("limit-expression", "SELECT ServiceName FROM otel_traces LIMIT 10 * 1000000", "limit"),
    ("parameter", "SELECT ServiceName FROM otel_traces WHERE ResourceAttributes['tenant.id'] = {tenant:String}",
     "parameter"),
    ("cte-shadows-table", "WITH otel_traces AS (SELECT 1 AS ServiceName) SELECT ServiceName FROM otel_traces",
     "cte_name"),
    ("in-table", "SELECT ServiceName FROM otel_traces WHERE TraceId IN otel_logs", "in_table"),
    ("global-in-table", "SELECT ServiceName FROM otel_traces WHERE TraceId GLOBAL IN olly.otel_logs", "in_table"),
    ("alias-named-like-a-table", "SELECT ServiceName AS otel_logs FROM otel_traces", "cte_name"),
    ("deep-nesting", "SELECT " + "(" * 3000 + "1" + ")" * 3000 + " FROM otel_traces", "parse"),
    ("other-tenant-by-attribute", "SELECT Body FROM otel_logs WHERE ResourceAttributes['tenant.id'] = 'globex'",
     "tenant"),
    ("other-tenant-by-column", "SELECT ServiceName FROM ollystack_anomalies WHERE Tenant != 'acme'", "tenant"),
    ("other-tenant-in-union", "SELECT ServiceName FROM otel_traces UNION ALL SELECT ServiceName FROM "
                              "ollystack_alerts WHERE Tenant = 'globex'", "tenant"),
    ("empty", "   ", "parse"),
    ("garbage", "SELEKT * FRM otel_traces", "select_only"),
    ("unbalanced", "SELECT (ServiceName FROM otel_traces", "parse"),
]


@pytest.mark.parametrize(("query", "rule"), [(q, r) for _, q, r in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_a_hostile_query_is_refused_naming_the_rule_it_broke(query: str, rule: str) -> None:
    with pytest.raises(GuardError) as refused:
        guard_sql(query, database=DB, tenant="acme", caps=CAPS)
    assert refused.value.rule == rule, str(refused.value)
    assert str(refused.value).startswith(f"{rule}: ")


def test_there_are_at_least_forty_hostile_queries() -> None:
    assert len(HOSTILE) >= 40
    assert len({i for i, _, _ in HOSTILE}) == len(HOSTILE)


def _tables_in(sql: str) -> list[tuple[str, str]]:
    tree = sqlglot.parse_one(sql, read="clickhouse")
    return [(t.db, t.name) for t in tree.find_all(sqlglot.exp.Table)]


ALLOWED = [
    ("count-by-service", "SELECT ServiceName, count() AS n FROM otel_traces GROUP BY ServiceName ORDER BY n DESC"),
    ("join-with-aliases", "SELECT t.ServiceName, l.Body FROM otel_traces AS t JOIN otel_logs AS l ON l.TraceId = "
                          "t.TraceId WHERE t.StatusCode = 'Error' LIMIT 10"),
    ("cte-and-union", "WITH e AS (SELECT ServiceName AS s FROM otel_traces WHERE StatusCode = 'Error') "
                      "SELECT s FROM e UNION ALL SELECT ServiceName FROM otel_logs WHERE SeverityNumber >= 17"),
    ("final-and-nested", "SELECT Events.Name, ResourceAttributes['service.name'] AS svc FROM otel_traces FINAL "
                         "LIMIT 5"),
    ("subquery-in-where", "SELECT Body FROM otel_logs WHERE TraceId IN (SELECT TraceId FROM otel_traces "
                          "WHERE Duration > 1000000)"),
    ("tenant-column-table", "SELECT ServiceName, max(Score) FROM ollystack_anomalies GROUP BY ServiceName"),
    ("lambda", "SELECT arrayMap(x -> x * 2, BucketCounts) FROM otel_metrics_histogram LIMIT 3"),
]


@pytest.mark.parametrize("query", [q for _, q in ALLOWED], ids=[i for i, _ in ALLOWED])
def test_an_allowed_query_reads_only_its_tenants_rows_of_this_database(query: str) -> None:
    guarded = guard_sql(query, database=DB, tenant="acme", caps=CAPS)
    assert guarded.params == {"tenant": "acme"}
    sql, _, settings = guarded.sql.rpartition(" SETTINGS ")
    assert settings == "readonly = 1, max_execution_time = 5, max_memory_usage = 100000000"
    tables = _tables_in(sql)
    assert tables and all(db == DB and name in ALLOWED_TABLES for db, name in tables if db or name in ALLOWED_TABLES)
    # Every table read is wrapped in a subquery holding the tenant's rows alone.
    assert sql.count("{tenant: String}") == len([t for t in tables if t[0] == DB])
    # What runs parses back to one SELECT.
    assert len(sqlglot.parse(guarded.sql, read="clickhouse")) == 1


def test_an_admin_may_group_by_tenant() -> None:
    guarded = guard_sql("SELECT Tenant, count() AS n FROM ollystack_alerts GROUP BY Tenant", database=DB,
                        tenant=None, caps=CAPS)
    assert "GROUP BY Tenant" in guarded.sql


def test_without_a_tenant_no_filter_is_added_but_the_database_still_is() -> None:
    guarded = guard_sql("SELECT Body FROM otel_logs", database=DB, tenant=None, caps=CAPS)
    assert guarded.params == {}
    assert "tenant" not in guarded.sql
    assert "FROM (SELECT * FROM olly.otel_logs) AS otel_logs" in guarded.sql


@pytest.mark.parametrize(("query", "limit", "added"), [
    ("SELECT Body FROM otel_logs", "LIMIT 100", True),
    ("SELECT Body FROM otel_logs LIMIT 7", "LIMIT 7", False),
    ("SELECT Body FROM otel_logs LIMIT 2, 7", "LIMIT 7 OFFSET 2", False),
    ("SELECT Body FROM otel_logs UNION ALL SELECT Body FROM otel_logs LIMIT 500", ") LIMIT 100", True),
    ("SELECT Body FROM otel_logs LIMIT 5 BY ServiceName", ") LIMIT 100", True),
], ids=["missing-is-added", "smaller-is-kept", "offset-is-kept", "union-is-capped-as-a-whole", "limit-by-is-capped"])
def test_the_limit_is_enforced(query: str, limit: str, added: bool) -> None:
    guarded = guard_sql(query, database=DB, tenant="acme", caps=CAPS)
    assert limit in guarded.sql
    assert guarded.limit_added is added


def test_the_output_columns_are_named_as_written() -> None:
    guarded = guard_sql("SELECT ServiceName AS service, count() AS spans FROM otel_traces GROUP BY service",
                        database=DB, tenant="acme", caps=CAPS)
    assert guarded.columns == ("service", "spans")
