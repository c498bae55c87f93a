"""Per-minute rollups of stored spans: find the minutes inserts touched, recompute them exactly.

A view on otel_traces marks each minute an inserted block touches (0010_service_rollups.sql),
whoever wrote the block. ``refresh_rollups`` recomputes marked minutes from the stored spans,
each span once (as FINAL reads them), so a block stored twice (retry, replay) collapses
before it is counted. It writes each minute's full rows again with a newer Version
(ReplacingMergeTree keeps the newest), then marks Deleted the keys the new computation
lacks, so reads with FINAL see exactly the latest computation. What is pending lives in the
tables (latest mark per minute against the latest mark a refresh covered), so a restart
loses nothing and any number of refreshers may run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

from schemas.span_predicates import (
    CALLING_SPAN,
    DB_SYSTEM,
    ENTRY_SPAN,
    ERROR_STATUS,
    PEER_NAME,
    SPAN_TENANT,
    sketch_duration,
)
from schemas.tables import (
    HOURLY_ROLLUP_OF,
    ROLLUP_DIRTY_TABLE,
    ROLLUP_MINUTES_TABLE,
    SERVICE_EDGES_TABLE,
    SERVICE_ROLLUP_TABLE,
    TRACES_TABLE,
)
from sinks.warehouse import Warehouse

MINUTE_S = 60
HOUR_S = 3600
NS_PER_S = 1_000_000_000
# A mark can be stored a moment before the rows of its block are visible to a read. Marks
# newer than the refresh's start less this margin are not counted as covered, so their
# minutes are recomputed once more on a later pass.
DEFAULT_MARGIN_S = 5.0
# Minutes recomputed per pass, oldest first: bounds one pass's scan (and, on chDB, how long
# it holds the engine that inserts also need).
DEFAULT_MAX_MINUTES = 30
_PENDING_LIMIT = 100_000
# A set of minutes travels as one String of Unix seconds: array parameters are not portable
# between chDB and clickhouse-driver.
MINUTE_SET = "(SELECT toDateTime(toUInt32(arrayJoin(splitByChar(',', {minutes:String})))))"
# The hours of those minutes, in the warehouse's time zone (as readers cut their windows).
HOURS_OF_MINUTES = ("(SELECT DISTINCT toStartOfHour(toDateTime(toUInt32(arrayJoin(splitByChar(',', "
                    "{minutes:String}))))))")
_BETWEEN = ("Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) "
            "AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})")
_CHILDREN = ("ParentSpanId != '' AND Timestamp >= fromUnixTimestamp64Nano({child_start_ns:Int64}) "
             "AND Timestamp < fromUnixTimestamp64Nano({child_end_ns:Int64})")
_VERSION = "fromUnixTimestamp64Milli({version_ms:Int64})"
# The edges statement groups every child span of its window by parent and joins the groups
# to the parents: memory that grows with the spans of a window (over 400 MB at 2.8M spans).
# Past this size the grouping and the join spill to the engine's temporary folder (chDB:
# the session's tmp/), so a pass stays within about 200 MB however many spans it reads.
DEFAULT_SPILL_BYTES = 50_000_000


@dataclass(frozen=True)
class RefreshReport:
    """What one ``refresh_rollups`` call did.

    ``minutes``: dirty minutes recomputed; ``passes``: passes run; ``pending``: dirty minutes
    still waiting afterwards (left over by the per-pass cap; minutes marked during the call
    are not counted); ``lag_s``: age of the latest mark of the oldest waiting minute (0 when
    none waits); ``seconds``: wall time of the call."""

    minutes: int
    passes: int
    pending: int
    lag_s: float
    seconds: float


def _spans(db: str, where: str, extra: str = "") -> str:
    """The stored spans matching ``where``, each once, as FINAL reads them.

    A span stored twice (a retry or a replay stores identical copies) collapses on the
    table's sort key; of two copies that differ, either is kept. FINAL merges the sorted
    parts as it reads them, so it holds no set of every span it has seen: the ``LIMIT 1 BY``
    on the sort key it replaced held one, and at 1.5M spans a minute a recompute grew by
    hundreds of MB. FINAL still prunes parts and granules by the time filter: on 4M spans
    over 20 minutes, a two-minute pass took 0.45-0.62 s with FINAL against 0.74-0.76 s
    with ``LIMIT 1 BY`` (chDB 4.4)."""
    return (f"(SELECT Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, Duration, "
            f"StatusCode, CorrelationId, {SPAN_TENANT} AS tenant{extra} FROM {db}.{TRACES_TABLE} FINAL "
            f"WHERE {where})")


def _service_sql(db: str) -> str:
    spans = _spans(db, f"{_BETWEEN} AND toStartOfMinute(Timestamp) IN {MINUTE_SET}")
    # The slowest span's IDs are tie-broken by its identity, so a recompute picks the same one.
    return (
        f"INSERT INTO {db}.{SERVICE_ROLLUP_TABLE} (Tenant, Minute, ServiceName, SpanName, SpanKind, StatusCode, "
        f"Entry, Spans, DurationNs, MaxDurationNs, SlowCorrelationId, SlowTraceId, Version) "
        f"SELECT tenant, toStartOfMinute(Timestamp) AS minute, ServiceName, SpanName, "
        f"SpanKind, StatusCode, {ENTRY_SPAN} AS entry, count(), "
        f"quantileBFloat16State({sketch_duration('Duration')}), max(Duration), "
        f"argMax(CorrelationId, (Duration, TraceId, SpanId)), argMax(TraceId, (Duration, TraceId, SpanId)), "
        f"{_VERSION} FROM {spans} "
        f"GROUP BY tenant, minute, ServiceName, SpanName, SpanKind, StatusCode, entry"
    )


def _spill(spill_bytes: int) -> str:
    return (f"max_bytes_before_external_group_by = {spill_bytes}, join_algorithm = 'grace_hash', "
            f"max_bytes_in_join = {spill_bytes}")


def _edges_sql(db: str, spill_bytes: int) -> str:
    in_minutes = f"{_BETWEEN} AND toStartOfMinute(Timestamp) IN {MINUTE_SET}"
    # A client or producer span may name a database or peer: a node of the map.
    named = (f", if({CALLING_SPAN}, if({DB_SYSTEM} != '', {DB_SYSTEM}, {PEER_NAME}), '') AS target, "
             f"if({DB_SYSTEM} != '', 'database', 'peer') AS target_kind")
    parents = (f"SELECT tenant, toStartOfMinute(Timestamp) AS minute, TraceId AS trace_id, SpanId AS span_id, "
               f"toString(ServiceName) AS service, toString(SpanName) AS name, {ERROR_STATUS} AS failed, "
               f"Duration AS duration, target, target_kind FROM {_spans(db, in_minutes, named)}")
    # Children may start in the minute after their parent's, or (clock skew between hosts)
    # a little before it.
    children = (f"SELECT tenant, TraceId AS trace_id, ParentSpanId AS parent_id, "
                f"groupArray((toString(ServiceName), toString(SpanName), {ERROR_STATUS}, Duration)) AS kids, "
                f"groupUniqArray(toString(ServiceName)) AS services FROM {_spans(db, _CHILDREN)} "
                "GROUP BY tenant, trace_id, parent_id")
    # Each parent with its children, joined once (the spans of these minutes are read once
    # as parents and once as children): an edge to each child of another service, and to
    # the database or peer the span names when no span of another service answered it
    # (that span's own edge says who was called).
    edges = ("arrayConcat(arrayMap(k -> (k.1, 'service', k.2, k.3, k.4), arrayFilter(k -> k.1 != p.service, c.kids)), "
             "if(p.target != '' AND NOT arrayExists(v -> v != p.service, c.services), "
             "[(p.target, p.target_kind, p.name, p.failed, p.duration)], []))")
    return (
        f"INSERT INTO {db}.{SERVICE_EDGES_TABLE} (Tenant, Minute, Caller, Callee, CalleeKind, Operation, Calls, "
        f"Errors, DurationNs, Version) "
        f"SELECT tenant, minute, caller, edge.1 AS callee, edge.2 AS callee_kind, edge.3 AS operation, count(), "
        f"countIf(edge.4), quantileBFloat16State({sketch_duration('edge.5')}), {_VERSION} FROM ("
        f"SELECT p.tenant AS tenant, p.minute AS minute, p.service AS caller, {edges} AS found "
        f"FROM ({parents}) AS p LEFT JOIN ({children}) AS c "
        f"ON c.trace_id = p.trace_id AND c.parent_id = p.span_id AND c.tenant = p.tenant) "
        f"ARRAY JOIN found AS edge "
        f"GROUP BY tenant, minute, caller, callee, callee_kind, operation "
        f"SETTINGS join_use_nulls = 0, {_spill(spill_bytes)}"
    )


# The sort key of each rollup table: what a row of one minute's (or hour's) computation is.
_KEYS = {
    SERVICE_ROLLUP_TABLE: "Tenant, Minute, ServiceName, SpanName, SpanKind, StatusCode, Entry",
    SERVICE_EDGES_TABLE: "Tenant, Minute, Caller, Callee, CalleeKind, Operation",
}
_KEYS.update({HOURLY_ROLLUP_OF[table]: keys for table, keys in _KEYS.items()})
# Each minute table's values, merged into an hour's: column -> its merge over the minutes.
_HOUR_VALUES = {
    SERVICE_ROLLUP_TABLE: {
        "Spans": "sum(Spans)", "DurationNs": "quantileBFloat16MergeState(DurationNs)",
        "MaxDurationNs": "max(MaxDurationNs)",
        "SlowCorrelationId": "argMax(SlowCorrelationId, (MaxDurationNs, SlowTraceId))",
        "SlowTraceId": "argMax(SlowTraceId, (MaxDurationNs, SlowTraceId))",
    },
    SERVICE_EDGES_TABLE: {
        "Calls": "sum(Calls)", "Errors": "sum(Errors)", "DurationNs": "quantileBFloat16MergeState(DurationNs)",
    },
}


def hours_sql(db: str, table: str, where: str, version: str) -> str:
    """INSERT the hourly rows of ``table`` (a minute rollup) for the hours of its rows
    matching ``where``, re-merged from those hours' minutes as FINAL reads them, at
    ``version``. Sketches merge exactly: an hour answers as its minutes together do."""
    keys = _KEYS[table].split(", ")
    groups = ["toStartOfHour(Minute) AS hour" if key == "Minute" else key for key in keys]
    values = _HOUR_VALUES[table]
    return (f"INSERT INTO {db}.{HOURLY_ROLLUP_OF[table]} ({', '.join(keys)}, {', '.join(values)}, Version) "
            f"SELECT {', '.join(groups)}, {', '.join(values.values())}, {version} "
            f"FROM {db}.{table} FINAL WHERE {where} "
            f"GROUP BY {', '.join(k if k != 'Minute' else 'hour' for k in keys)}")


def hour_placeholders(db: str) -> dict[str, str]:
    """The DDL's $placeholders for 0013: every hour of the minute rollups already stored."""
    return {f"{table}_hours": hours_sql(db, table, "1 = 1", "now64(3)") for table in _HOUR_VALUES}


def _vanished_sql(db: str, table: str, periods: str = MINUTE_SET) -> str:
    # Run after the new rows are in: a key the recompute did not write again still holds an
    # older computation's row, which a Deleted row one millisecond older than the new ones
    # replaces. Readers never see a minute half written: new rows first, then deletions.
    keys = _KEYS[table]
    return (f"INSERT INTO {db}.{table} ({keys}, Version, Deleted) "
            f"SELECT {keys}, fromUnixTimestamp64Milli({{version_ms:Int64}} - 1), 1 FROM {db}.{table} FINAL "
            f"WHERE Minute IN {periods} AND Version < {_VERSION}")


def _pending_sql(db: str) -> str:
    return (
        f"SELECT toUnixTimestamp(d.Minute) AS minute_s, toUnixTimestamp64Milli(d.marked) AS marked_ms, "
        f"toUnixTimestamp64Milli(c.covered) AS covered_ms "
        f"FROM (SELECT Minute, max(MarkedAt) AS marked FROM {db}.{ROLLUP_DIRTY_TABLE} GROUP BY Minute) AS d "
        f"LEFT JOIN (SELECT Minute, max(Covered) AS covered FROM {db}.{ROLLUP_MINUTES_TABLE} GROUP BY Minute) AS c "
        f"ON c.Minute = d.Minute WHERE d.marked > c.covered ORDER BY minute_s LIMIT {_PENDING_LIMIT} "
        f"SETTINGS join_use_nulls = 0"
    )


def _covered_sql(db: str) -> str:
    # Covered is the latest mark the recompute surely saw: marks past the cutoff may belong
    # to rows that were not yet visible, so their minute stays pending.
    return (
        f"INSERT INTO {db}.{ROLLUP_MINUTES_TABLE} (Minute, Covered) "
        f"SELECT Minute, least(max(MarkedAt), fromUnixTimestamp64Milli({{cutoff_ms:Int64}})) "
        f"FROM {db}.{ROLLUP_DIRTY_TABLE} WHERE Minute IN {MINUTE_SET} GROUP BY Minute"
    )


class Pending(NamedTuple):
    """A dirty minute not yet covered by a refresh."""

    minute_s: int  # Unix seconds
    marked_ms: int  # its latest mark, Unix ms
    covered_ms: int  # the latest mark its last recompute covered, Unix ms (0: never recomputed)


def pending_minutes(warehouse: Warehouse) -> list[Pending]:
    """Dirty minutes not yet covered by a refresh, oldest first."""
    rows = warehouse.query(_pending_sql(warehouse.database))
    return [Pending(int(r["minute_s"]), int(r["marked_ms"]), max(0, int(r["covered_ms"]))) for r in rows]


def _minute_list(minutes: list[int]) -> str:
    return ",".join(str(m) for m in minutes)


def recompute_minutes(warehouse: Warehouse, minutes: list[int], version_ms: int,
                      spill_bytes: int = DEFAULT_SPILL_BYTES) -> None:
    """Write the full rollup rows of ``minutes`` (Unix seconds) with ``version_ms`` (newer
    than any earlier computation's): the service rollup of each, and the edges of each and
    of the minute before it (a child stored late pairs with a parent of the minute before);
    then delete the keys of those minutes the new rows do not have; then the same for the
    hours of those minutes. The edges' grouping and join spill to disk past ``spill_bytes``."""
    db = warehouse.database
    warehouse.execute(_service_sql(db), {
        "minutes": _minute_list(minutes), "version_ms": version_ms,
        "start_ns": min(minutes) * NS_PER_S, "end_ns": (max(minutes) + MINUTE_S) * NS_PER_S})
    warehouse.execute(_vanished_sql(db, SERVICE_ROLLUP_TABLE),
                      {"minutes": _minute_list(minutes), "version_ms": version_ms})
    parents = sorted(set(minutes) | {m - MINUTE_S for m in minutes})
    warehouse.execute(_edges_sql(db, spill_bytes), {
        "minutes": _minute_list(parents), "version_ms": version_ms,
        "start_ns": parents[0] * NS_PER_S, "end_ns": (parents[-1] + MINUTE_S) * NS_PER_S,
        "child_start_ns": (parents[0] - MINUTE_S) * NS_PER_S,
        "child_end_ns": (parents[-1] + 2 * MINUTE_S) * NS_PER_S})
    warehouse.execute(_vanished_sql(db, SERVICE_EDGES_TABLE),
                      {"minutes": _minute_list(parents), "version_ms": version_ms})
    # Then the hours of those minutes, from all their minutes' rows (new and old).
    hour_rows = (f"toStartOfHour(Minute) IN {HOURS_OF_MINUTES} "
                 f"AND Minute >= toDateTime({{first_s:UInt32}}) AND Minute < toDateTime({{last_s:UInt32}})")
    for table, of in ((SERVICE_ROLLUP_TABLE, minutes), (SERVICE_EDGES_TABLE, parents)):
        params = {"minutes": _minute_list(of), "version_ms": version_ms,
                  "first_s": min(of) - HOUR_S, "last_s": max(of) + HOUR_S}  # whole hours in any time zone
        warehouse.execute(hours_sql(db, table, hour_rows, _VERSION), params)
        warehouse.execute(_vanished_sql(db, HOURLY_ROLLUP_OF[table], HOURS_OF_MINUTES), params)


def _warehouse_now_ms(warehouse: Warehouse) -> int:
    # The warehouse's clock, the one the marks were written with.
    return int(warehouse.query("SELECT toUnixTimestamp64Milli(now64(3)) AS now_ms")[0]["now_ms"])


def refresh_rollups(warehouse: Warehouse, *, margin_s: float = DEFAULT_MARGIN_S,
                    max_minutes: int = DEFAULT_MAX_MINUTES, until_done: bool = False,
                    minute_interval_s: float = 0.0, spill_bytes: int = DEFAULT_SPILL_BYTES) -> RefreshReport:
    """Recompute dirty minutes, oldest first, at most ``max_minutes`` per pass; with
    ``until_done``, pass after pass until every minute dirty at the start was recomputed
    (each at most once per call). Synchronous: when it returns, reads of the rollups see
    every span whose insert returned more than ``margin_s`` before the call (0 when the
    caller's inserts have all returned), except in minutes left waiting by
    ``minute_interval_s``: a minute whose last recompute covered marks younger than that
    waits for a later call (it stays pending). A pass's largest statement spills to disk
    past ``spill_bytes`` of memory.

    Why the interval: a recompute reads all of a minute's spans, and its edges the spans
    of the minutes around it, so a minute still receiving spans, recomputed on every pass
    of a worker that passes every few seconds, was read again and again: at 10 s passes,
    every stored span was read about 18 times over.

    Raises WarehouseError (WarehouseUnavailableError when retrying can help). A pass cut
    short leaves its minutes pending: they are recomputed by the next call."""
    if max_minutes <= 0 or spill_bytes <= 0 or margin_s < 0 or minute_interval_s < 0:
        raise ValueError("max_minutes and spill_bytes must be > 0, margin_s and minute_interval_s >= 0")
    began = time.monotonic()
    done: set[int] = set()
    passes = 0
    while True:
        now_ms = _warehouse_now_ms(warehouse)
        recent_ms = now_ms - int(minute_interval_s * 1000)
        waiting = [p for p in pending_minutes(warehouse) if p.minute_s not in done]
        ready = [p for p in waiting if not p.covered_ms or p.covered_ms <= recent_ms]
        take = [p.minute_s for p in ready[:max_minutes]]
        taken = set(take)
        left = [p for p in waiting if p.minute_s not in taken]
        if take:
            recompute_minutes(warehouse, take, now_ms, spill_bytes)
            warehouse.execute(_covered_sql(warehouse.database), {
                "minutes": _minute_list(take), "cutoff_ms": now_ms - int(margin_s * 1000)})
            done.update(take)
            passes += 1
        if not (until_done and take and len(ready) > len(take)):
            lag_s = max(0.0, (now_ms - left[0].marked_ms) / 1000) if left else 0.0
            return RefreshReport(len(done), passes, len(left), lag_s, time.monotonic() - began)
