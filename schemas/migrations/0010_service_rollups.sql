-- Per-minute rollups of spans and of calls between services, so that the service list,
-- the service map, trends and the score's buckets never scan raw spans.
--
-- How they stay exact (sinks/rollups.py): a view marks every minute an inserted block
-- touches as dirty; a refresh recomputes each dirty minute from the stored spans, each span
-- once (so a block stored twice collapses first), and writes the minute's full rows again
-- with a newer Version, which replaces the rows of the earlier computation; a key the new
-- computation no longer has (a peer edge that became a service edge once the callee's span
-- arrived) gets a Deleted row. Reads use FINAL.

-- Dirty minutes: the latest time any block with spans of that minute was inserted. Every
-- writer of otel_traces passes through the view (our worker, replay, a Collector).
CREATE TABLE IF NOT EXISTS $db.ollystack_rollup_dirty
(
    Minute DateTime CODEC(Delta, ZSTD(1)),
    MarkedAt SimpleAggregateFunction(max, DateTime64(3))
)
ENGINE = AggregatingMergeTree
ORDER BY Minute
$traces_ttl_minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_rollup_dirty_mv
TO $db.ollystack_rollup_dirty
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    max(now64(3)) AS MarkedAt
FROM $db.otel_traces
GROUP BY Minute;

-- Spans stored before this migration: their minutes are marked too, so the worker rolls up
-- the history in the background (oldest first) instead of leaving old windows empty. The
-- view above already marks new inserts; a minute marked by both is refreshed once.
INSERT INTO $db.ollystack_rollup_dirty (Minute, MarkedAt)
SELECT toStartOfMinute(Timestamp) AS Minute, now64(3) AS MarkedAt
FROM $db.otel_traces
GROUP BY Minute;

-- Refreshed minutes: a minute is up to date while its latest mark is at most Covered.
CREATE TABLE IF NOT EXISTS $db.ollystack_rollup_minutes
(
    Minute DateTime CODEC(Delta, ZSTD(1)),
    Covered SimpleAggregateFunction(max, DateTime64(3))
)
ENGINE = AggregatingMergeTree
ORDER BY Minute
$traces_ttl_minute;

-- Spans per (tenant, service, operation, kind, status, entry or not, minute). Entry: a
-- root, server or consumer span (a request). DurationNs is a quantileBFloat16 state:
-- mergeable, and the same whatever order its spans were added in.
CREATE TABLE IF NOT EXISTS $db.ollystack_service_rollup
(
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    Minute DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    Entry UInt8,
    Spans UInt64,
    DurationNs AggregateFunction(quantileBFloat16, UInt64),
    MaxDurationNs UInt64,
    SlowCorrelationId String CODEC(ZSTD(1)),
    SlowTraceId String CODEC(ZSTD(1)),
    Version DateTime64(3),
    Deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(Version, Deleted)
PARTITION BY toDate(Minute)
ORDER BY (Tenant, Minute, ServiceName, SpanName, SpanKind, StatusCode, Entry)
$traces_ttl_minute;

-- The table of 0004 was never written; its per-minute successor replaces it.
DROP TABLE IF EXISTS $db.ollystack_service_edges;

-- Calls per minute of the caller's span: caller service -> callee (a service, or a
-- database or peer a client span names when no span of the callee was stored), the
-- callee's operation, calls, failed calls and a quantileBFloat16 state of their durations.
CREATE TABLE IF NOT EXISTS $db.ollystack_service_edges
(
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    Minute DateTime CODEC(Delta, ZSTD(1)),
    Caller LowCardinality(String) CODEC(ZSTD(1)),
    Callee LowCardinality(String) CODEC(ZSTD(1)),
    CalleeKind LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    Calls UInt64,
    Errors UInt64,
    DurationNs AggregateFunction(quantileBFloat16, UInt64),
    Version DateTime64(3),
    Deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(Version, Deleted)
PARTITION BY toDate(Minute)
ORDER BY (Tenant, Minute, Caller, Callee, CalleeKind, Operation)
$traces_ttl_minute;
