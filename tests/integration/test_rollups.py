"""The per-minute rollups on real chDB: the same answers as raw spans, unchanged by a block
stored twice, late children paired with their parents, virtual database and peer nodes,
bounded passes, and the worker's periodic refresh."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from agents.metrics import WorkerMetrics
from api.params import TimeRange
from api.queries.alerts import service_buckets
from api.queries.scope import QueryScope
from api.queries.services import service_edges, service_stats
from core.errors import WarehouseError
from core.settings import ClickHouseSettings, RollupSettings
from pipeline.rollup_refresher import RollupRefresher
from schemas.span_predicates import sketch_duration
from sinks.backend import open_warehouse
from sinks.migrations import migrate
from sinks.rollups import pending_minutes, refresh_rollups
from sinks.warehouse import Warehouse
from tests.support.builders import wait_until
from tests.support.warehouses import warehouse_before

pytestmark = pytest.mark.asyncio
MIN_NS = 60 * 1_000_000_000
MS = 1_000_000
T0 = 1_796_000_000 // 60 * 60 * 1_000_000_000  # a whole minute in 2026
MINUTES = 5
WINDOW = TimeRange(T0 - MIN_NS, T0 + (MINUTES + 1) * MIN_NS)
HOUR_NS = 60 * MIN_NS
# Whole hours around the traffic: services and edges come from the hourly rollups.
WIDE = TimeRange(T0 - 3 * HOUR_NS, T0 + 3 * HOUR_NS)
ERROR = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"
TENANT = "ResourceAttributes['tenant.id']"
SKETCHED = sketch_duration("Duration")  # the latency precision the rollups keep


def span(trace: str, span_id: str, parent: str, at_ns: int, service: str, name: str, kind: str, *,
         failed: bool = False, tenant: str = "acme", attrs: dict[str, str] | None = None,
         duration_ns: int = 5 * MS, cid: str = "") -> dict[str, Any]:
    return {"Timestamp": at_ns, "TraceId": trace, "SpanId": span_id, "ParentSpanId": parent, "SpanName": name,
            "SpanKind": kind, "ServiceName": service,
            "ResourceAttributes": {"service.name": service, "tenant.id": tenant}, "SpanAttributes": attrs or {},
            "Duration": duration_ns, "StatusCode": "Error" if failed else "Ok", "CorrelationId": cid}


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def traffic(seed: int = 7, traces: int = 240) -> list[dict[str, Any]]:
    """Traces over MINUTES minutes for two tenants: frontend -> checkout (through a client
    span), checkout -> postgresql (db.system or db.system.name, no span of the database),
    checkout -> a payment API known only by server.address or peer.service, and now and then
    a child that starts in the minute after its parent's."""
    rng = random.Random(seed)
    rows = []
    for n in range(traces):
        trace = f"{n:032x}"
        tenant = rng.choice(("acme", "globex"))
        at = T0 + rng.randrange(MINUTES * MIN_NS - 3_000 * MS)
        def d() -> int:
            return rng.randrange(1, 2_000) * MS + rng.randrange(MS)
        ids = [f"{n:08x}{k:08x}" for k in range(6)]
        cid = f"cid-{n}"
        rows.append(span(trace, ids[0], "", at, "frontend", rng.choice(("GET /", "POST /cart")), "Server",
                         tenant=tenant, duration_ns=d(), cid=cid, failed=rng.random() < 0.05))
        rows.append(span(trace, ids[1], ids[0], at + MS, "frontend", "GET checkout", "Client", tenant=tenant,
                         duration_ns=d(), cid=cid, attrs={"server.address": "checkout.internal"}))
        late = rng.random() < 0.2  # the callee's span starts in the minute after its caller's
        rows.append(span(trace, ids[2], ids[1], (at // MIN_NS + 1) * MIN_NS + rng.randrange(500) * MS if late
                         else at + 2 * MS,
                         "checkout", "GET /checkout", "Server", tenant=tenant, duration_ns=d(), cid=cid,
                         failed=rng.random() < 0.2))
        db_key = rng.choice(("db.system", "db.system.name"))
        rows.append(span(trace, ids[3], ids[2], at + 3 * MS, "checkout", "SELECT orders", "Client", tenant=tenant,
                         duration_ns=d(), cid=cid, attrs={db_key: "postgresql"}, failed=rng.random() < 0.1))
        peer = rng.choice(({"server.address": "api.payments.example"}, {"peer.service": "payments"}))
        rows.append(span(trace, ids[4], ids[2], at + 4 * MS, "checkout", "POST charge", "Client", tenant=tenant,
                         duration_ns=d(), cid=cid, attrs=peer, failed=rng.random() < 0.1))
        rows.append(span(trace, ids[5], ids[2], at + 5 * MS, "checkout", "render", "Internal", tenant=tenant,
                         duration_ns=d(), cid=cid))
    return rows


def insert_by_service(wh: Warehouse, rows: list[dict[str, Any]], seed: int = 3) -> None:
    """Each service exports on its own, in blocks, callees' blocks first now and then."""
    rng = random.Random(seed)
    blocks = [[r for r in rows if r["ServiceName"] == s][i::3] for s in ("checkout", "frontend") for i in range(3)]
    rng.shuffle(blocks)
    for block in blocks:
        wh.insert("otel_traces", columns(block))


def raw_services(wh: Warehouse, tenant: str) -> dict[str, tuple[int, int, int, int, list[Any]]]:
    rows = wh.query(
        f"SELECT toString(ServiceName) AS service, count() AS spans, countIf(entry) AS requests, "
        f"countIf(entry AND failed) AS errors, countIf(failed) AS error_spans, "
        f"quantilesBFloat16If(0.5, 0.95, 0.99)({SKETCHED}, entry) AS q FROM (SELECT *, {ERROR} AS failed, "
        f"(ParentSpanId = '' OR SpanKind IN ('Server', 'Consumer')) AS entry "
        f"FROM {wh.database}.otel_traces FINAL WHERE {TENANT} = {{tenant:String}}) GROUP BY service",
        {"tenant": tenant})
    return {r["service"]: (r["spans"], r["requests"], r["errors"], r["error_spans"], r["q"]) for r in rows}


def raw_edges(wh: Warehouse, tenant: str, minute_ns: int | None = None) -> dict[tuple[str, str, str], Any]:
    """Edges straight from the spans: parent/child pairs across services, and client spans
    naming a database or peer that no span of another service answered."""
    db = wh.database
    spans = (f"SELECT TraceId, SpanId, ParentSpanId, toString(ServiceName) AS service, SpanKind, "
             f"{ERROR} AS failed, Duration, SpanAttributes AS a, toStartOfMinute(Timestamp) AS minute "
             f"FROM {db}.otel_traces FINAL WHERE {TENANT} = {{tenant:String}}")
    pairs = (f"FROM ({spans}) AS p JOIN ({spans}) AS c ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId "
             f"WHERE c.service != p.service")
    target = ("multiIf(a['db.system.name'] != '', a['db.system.name'], a['db.system'] != '', a['db.system'], "
              "a['peer.service'] != '', a['peer.service'], a['server.address'])")
    kind = "if(a['db.system.name'] != '' OR a['db.system'] != '', 'database', 'peer')"
    in_minute = "" if minute_ns is None else " AND minute = fromUnixTimestamp64Nano({minute_ns:Int64})"
    rows = wh.query(
        f"SELECT caller, callee, kind, count() AS calls, countIf(failed) AS errors, "
        f"quantilesBFloat16(0.5, 0.95, 0.99)({SKETCHED}) AS q FROM ("
        f"SELECT p.service AS caller, c.service AS callee, 'service' AS kind, c.failed AS failed, "
        f"c.Duration AS Duration, p.minute AS minute {pairs} "
        f"UNION ALL SELECT service, {target}, {kind}, failed, Duration, minute FROM ({spans}) "
        f"WHERE SpanKind IN ('Client', 'Producer') AND {target} != '' "
        f"AND (TraceId, SpanId) NOT IN (SELECT p.TraceId, p.SpanId {pairs})) "
        f"WHERE 1 = 1{in_minute} GROUP BY caller, callee, kind",
        {"tenant": tenant, "minute_ns": minute_ns or 0})
    return {(r["caller"], r["callee"], r["kind"]): (r["calls"], r["errors"], r["q"]) for r in rows}


def raw_buckets(wh: Warehouse, tenant: str) -> dict[tuple[str, int], tuple[Any, ...]]:
    rows = wh.query(
        f"SELECT toString(ServiceName) AS service, toUnixTimestamp(toStartOfMinute(Timestamp)) * 1000000000 AS b, "
        f"count() AS spans, countIf({ERROR}) AS errors, quantilesBFloat16(0.5, 0.95)({SKETCHED}) AS q, "
        f"argMax(CorrelationId, Duration) AS slow_cid, argMaxIf(CorrelationId, Duration, {ERROR}) AS error_cid "
        f"FROM {wh.database}.otel_traces FINAL WHERE {TENANT} = {{tenant:String}} GROUP BY service, b",
        {"tenant": tenant})
    return {(r["service"], r["b"]): (r["spans"], r["errors"], r["q"][0], r["q"][1], r["slow_cid"], r["error_cid"])
            for r in rows}


async def rolled_up(wh: Warehouse, tenant: str, window: TimeRange = WINDOW) -> dict[str, Any]:
    scope = QueryScope(wh.database, tenant)
    services = await service_stats(wh, scope, window, 1000)
    edges = await service_edges(wh, scope, window, 1000)
    buckets = await service_buckets(wh, scope, window, 60, None, None, 100_000)
    return {
        "services": {r["service"]: (r["spans"], r["requests"], r["errors"], r["error_spans"], r["quantiles_ns"])
                     for r in services},
        "edges": {(r["caller"], r["callee"], r["callee_kind"]): (r["calls"], r["errors"], r["quantiles_ns"])
                  for r in edges},
        "buckets": {(r["service"], r["bucket_ns"]): (r["spans"], r["errors"], r["p50_ns"], r["p95_ns"],
                                                      r["slow_cid"], r["error_cid"]) for r in buckets},
    }


@pytest.mark.parametrize("tenant", ["acme", "globex"])
async def test_rollups_answer_as_the_raw_spans_do(warehouse: Warehouse, tenant: str) -> None:
    insert_by_service(warehouse, traffic())
    report = refresh_rollups(warehouse, margin_s=0, max_minutes=2, until_done=True)
    assert (report.minutes, report.passes, report.pending) == (MINUTES + 1, 3, 0)  # late children: one more
    got = await rolled_up(warehouse, tenant)
    assert got["services"] == raw_services(warehouse, tenant)
    assert got["edges"] == raw_edges(warehouse, tenant)
    assert got["buckets"] == raw_buckets(warehouse, tenant)
    assert {kind for _, _, kind in got["edges"]} == {"service", "database", "peer"}
    wide = await rolled_up(warehouse, tenant, WIDE)
    assert (wide["services"], wide["edges"]) == (got["services"], got["edges"])
    assert hourly_rows(warehouse) > 0, "the wide window read the hourly rollups"
    # Cut inside the traffic's hour: minutes on one side, minutes and hours on the other;
    # together they count every span and call once.
    cut = T0 + 2 * MIN_NS  # a whole minute: a window touching part of a minute counts all of it
    before, after = (await rolled_up(warehouse, tenant, TimeRange(WIDE.start_ns, cut)),
                     await rolled_up(warehouse, tenant, TimeRange(cut, WIDE.end_ns)))
    for service, (spans, requests, errors, error_spans, _) in got["services"].items():
        halves = [part["services"].get(service, (0, 0, 0, 0, []))[:4] for part in (before, after)]
        assert [sum(values) for values in zip(*halves, strict=True)] == [spans, requests, errors, error_spans]
    assert before["services"] and after["services"]
    for m in range(MINUTES):  # an edge counts in its caller's minute
        minute = TimeRange(T0 + m * MIN_NS, T0 + (m + 1) * MIN_NS)
        assert (await rolled_up(warehouse, tenant, minute))["edges"] == raw_edges(warehouse, tenant, minute.start_ns)


async def test_a_pass_that_spills_to_disk_answers_as_one_in_memory(warehouse: Warehouse) -> None:
    # A byte of memory: every grouping and join of the edges spills to the engine's tmp/.
    insert_by_service(warehouse, traffic())
    assert refresh_rollups(warehouse, margin_s=0, until_done=True, spill_bytes=1).pending == 0
    got = await rolled_up(warehouse, "acme")
    assert got["edges"] == raw_edges(warehouse, "acme")
    assert {kind for _, _, kind in got["edges"]} == {"service", "database", "peer"}
    assert got["services"] == raw_services(warehouse, "acme")


def hourly_rows(wh: Warehouse) -> int:
    return int(wh.query(f"SELECT (SELECT count() FROM {wh.database}.ollystack_service_rollup_hourly FINAL) "
                        f"+ (SELECT count() FROM {wh.database}.ollystack_service_edges_hourly FINAL) AS n")[0]["n"])


async def test_minutes_rolled_up_before_the_hourly_rollups_existed_are_rolled_up_by_hour(
        warehouse: Warehouse) -> None:
    """Migration 0013 fills the hourly tables from the minute rollups already stored."""
    insert_by_service(warehouse, traffic())
    refresh_rollups(warehouse, margin_s=0, until_done=True)
    expected = await rolled_up(warehouse, "acme", WIDE)
    db = warehouse.database
    for table in ("ollystack_service_rollup_hourly", "ollystack_service_edges_hourly"):
        warehouse.execute(f"TRUNCATE TABLE {db}.{table}")
    warehouse.execute(f"ALTER TABLE {db}.ollystack_schema_migrations DELETE WHERE Version = 13 "
                      "SETTINGS mutations_sync = 1")
    assert (await rolled_up(warehouse, "acme", WIDE))["services"] == {}  # nothing by hour yet
    assert migrate(warehouse, ClickHouseSettings(database=db)) == ["0013_hourly_rollups"]
    assert await rolled_up(warehouse, "acme", WIDE) == expected


async def test_spans_stored_before_the_rollups_existed_are_rolled_up(chdb_dir: Path, unique: str) -> None:
    """A database migrated up to 0009 already holds spans: migration 0010 marks their
    minutes, so a refresh rolls them up as it would new ones."""
    settings = ClickHouseSettings(database=unique)
    with warehouse_before(settings, chdb_dir, 10) as wh:
        insert_by_service(wh, traffic())
        assert "0010_service_rollups" in migrate(wh, settings)
        assert refresh_rollups(wh, margin_s=0, until_done=True).minutes == MINUTES + 1
        got = await rolled_up(wh, "acme")
        assert got["services"] == raw_services(wh, "acme") and got["edges"] == raw_edges(wh, "acme")


async def test_a_block_stored_twice_leaves_the_rollups_unchanged(warehouse: Warehouse) -> None:
    rows = traffic(traces=60)
    warehouse.insert("otel_traces", columns(rows), dedup_token="block-1")
    refresh_rollups(warehouse, margin_s=0, until_done=True)
    before = await rolled_up(warehouse, "acme")
    warehouse.insert("otel_traces", columns(rows), dedup_token="block-1")  # a retry: the table drops it
    warehouse.insert("otel_traces", columns(rows[::2]))  # a replay: stored again, FINAL collapses it
    assert pending_minutes(warehouse), "both inserts marked their minutes dirty"
    report = refresh_rollups(warehouse, margin_s=0, until_done=True)
    assert report.minutes > 0 and pending_minutes(warehouse) == []
    assert await rolled_up(warehouse, "acme") == before
    assert (await rolled_up(warehouse, "acme", WIDE))["services"] == before["services"]


async def test_a_child_stored_later_turns_the_peer_edge_into_a_service_edge(warehouse: Warehouse) -> None:
    parent = span("t" * 32, "p" * 16, "", T0 + 59_000 * MS, "frontend", "GET checkout", "Client",
                  attrs={"server.address": "checkout.internal"}, duration_ns=40 * MS)
    warehouse.insert("otel_traces", columns([parent]))
    refresh_rollups(warehouse, margin_s=0)
    edges = (await rolled_up(warehouse, "acme"))["edges"]
    assert list(edges) == [("frontend", "checkout.internal", "peer")]
    # The callee's export arrives later, and its span starts in the next minute.
    child = span("t" * 32, "c" * 16, "p" * 16, T0 + 61_000 * MS, "checkout", "GET /checkout", "Server",
                 failed=True, duration_ns=30 * MS)
    warehouse.insert("otel_traces", columns([child]))
    assert [p.minute_s for p in pending_minutes(warehouse)] == [(T0 + MIN_NS) // 1_000_000_000]
    refresh_rollups(warehouse, margin_s=0)
    edges = (await rolled_up(warehouse, "acme"))["edges"]
    assert {key: value[:2] for key, value in edges.items()} == {("frontend", "checkout", "service"): (1, 1)}
    first_minute = TimeRange(T0, T0 + MIN_NS)
    assert list((await rolled_up(warehouse, "acme", first_minute))["edges"]) == [("frontend", "checkout", "service")]


async def test_databases_and_peers_become_nodes_of_their_kind(warehouse: Warehouse) -> None:
    calls = [
        span("a" * 32, "a1" * 8, "", T0, "orders", "SELECT", "Client", attrs={"db.system": "postgresql"}),
        span("a" * 32, "a2" * 8, "", T0, "orders", "GET", "Client", attrs={"db.system.name": "redis"}),
        span("a" * 32, "a3" * 8, "", T0, "orders", "charge", "Client", attrs={"peer.service": "payments",
                                                                             "server.address": "10.0.0.7"}),
        span("a" * 32, "a4" * 8, "", T0, "orders", "notify", "Producer", attrs={"server.address": "kafka:9092"}),
        span("a" * 32, "a5" * 8, "", T0, "orders", "quiet", "Client"),  # names nothing: no edge
        span("a" * 32, "a6" * 8, "", T0, "orders", "local", "Internal", attrs={"db.system": "sqlite"}),  # no call
    ]
    warehouse.insert("otel_traces", columns(calls))
    refresh_rollups(warehouse, margin_s=0)
    assert sorted((await rolled_up(warehouse, "acme"))["edges"]) == [
        ("orders", "kafka:9092", "peer"), ("orders", "payments", "peer"), ("orders", "postgresql", "database"),
        ("orders", "redis", "database")]


async def test_passes_are_bounded_oldest_first_and_young_marks_are_refreshed_again(warehouse: Warehouse) -> None:
    warehouse.insert("otel_traces", columns([span(f"{m:032x}", f"{m:016x}", "", T0 + m * MIN_NS, "svc", "op",
                                                  "Server") for m in range(5)]))
    first = refresh_rollups(warehouse, margin_s=0, max_minutes=2)
    assert (first.minutes, first.pending) == (2, 3) and first.lag_s >= 0
    assert [p.minute_s for p in pending_minutes(warehouse)] == [(T0 + m * MIN_NS) // 1_000_000_000 for m in (2, 3, 4)]
    # Marks younger than the margin may belong to rows not visible yet: recomputed now, and
    # left pending so that a later pass recomputes them once more.
    young = refresh_rollups(warehouse, margin_s=3600, max_minutes=10)
    assert (young.minutes, len(pending_minutes(warehouse))) == (3, 3)
    assert (await rolled_up(warehouse, "acme"))["services"]["svc"][0] == 5
    refresh_rollups(warehouse, margin_s=0, max_minutes=10)
    assert pending_minutes(warehouse) == []


async def test_a_minute_recomputed_recently_waits_for_its_interval(warehouse: Warehouse) -> None:
    """A minute still receiving spans is not read again on every pass: after a recompute it
    waits minute_interval_s, pending, and the next recompute counts what came meanwhile."""
    minute = T0 // 1_000_000_000
    warehouse.insert("otel_traces", columns([span("a" * 32, "a" * 16, "", T0, "svc", "op", "Server")]))
    assert refresh_rollups(warehouse, margin_s=0, minute_interval_s=3600).minutes == 1  # never recomputed: at once
    warehouse.insert("otel_traces", columns([span("b" * 32, "b" * 16, "", T0 + MS, "svc", "op", "Server")]))
    waited = refresh_rollups(warehouse, margin_s=0, minute_interval_s=3600, until_done=True)
    assert (waited.minutes, waited.pending) == (0, 1)
    assert [p.minute_s for p in pending_minutes(warehouse)] == [minute]
    assert (await rolled_up(warehouse, "acme"))["services"]["svc"][0] == 1
    assert refresh_rollups(warehouse, margin_s=0, minute_interval_s=0).minutes == 1
    assert (await rolled_up(warehouse, "acme"))["services"]["svc"][0] == 2
    assert pending_minutes(warehouse) == []


def refreshed(metrics: WorkerMetrics) -> float:
    return metrics.registry.get_sample_value("ollystack_rollup_minutes_refreshed_total") or 0.0


async def test_the_worker_refresher_runs_periodically_and_outlives_warehouse_errors(
        warehouse: Warehouse, chdb_dir: Path) -> None:
    metrics = WorkerMetrics()
    refresher = RollupRefresher(warehouse, RollupSettings(interval_s=0.2, margin_s=0, minute_interval_s=0), metrics)
    refresher.start()
    try:
        warehouse.insert("otel_traces", columns(traffic(traces=20)))
        await wait_until(lambda: not pending_minutes(warehouse) and refreshed(metrics) > 0,
                         deadline_s=30, what="the refresher caught up")
    finally:
        await refresher.stop()
    assert (await rolled_up(warehouse, "acme"))["services"] == raw_services(warehouse, "acme")

    missing = open_warehouse(ClickHouseSettings(database="no_such_database"), chdb_dir)  # every statement fails
    with pytest.raises(WarehouseError):
        refresh_rollups(missing)
    failing = RollupRefresher(missing, RollupSettings(interval_s=0.05), metrics)
    failing.start()
    try:
        # A second failure counted means the loop went on after the first.
        await wait_until(lambda: (metrics.registry.get_sample_value(
            "ollystack_rollup_refresh_errors_total", {"retriable": "false"}) or 0) >= 2, deadline_s=30,
            what="two failed passes counted")
    finally:
        await failing.stop()
