-- The per-minute rollups again per hour, so that a window of hours merges 60 times fewer
-- quantile sketches: at 10M spans /services over 24 hours merged about 125k minute sketches,
-- 55-65 ms p50 (benchmarks/correlation_lookup.py), nearly all of it in the merge.
-- A refresh that recomputes minutes recomputes their hours from all the hours' minute rows
-- (sinks/rollups.py), with the same Version and Deleted rules, so an hour answers exactly
-- as its minutes together do. Readers take whole hours from here and the minutes at the
-- window's edges from the minute tables (api/queries/rollups.py). Minute holds the hour.
-- The minute tables' columns; partitions of a month hold about as many rows as a day's do
-- there.
CREATE TABLE IF NOT EXISTS $db.ollystack_service_rollup_hourly AS $db.ollystack_service_rollup
ENGINE = ReplacingMergeTree(Version, Deleted)
PARTITION BY toYYYYMM(Minute)
ORDER BY (Tenant, Minute, ServiceName, SpanName, SpanKind, StatusCode, Entry)
$traces_ttl_minute;

CREATE TABLE IF NOT EXISTS $db.ollystack_service_edges_hourly AS $db.ollystack_service_edges
ENGINE = ReplacingMergeTree(Version, Deleted)
PARTITION BY toYYYYMM(Minute)
ORDER BY (Tenant, Minute, Caller, Callee, CalleeKind, Operation)
$traces_ttl_minute;

-- The hours of the minutes rolled up before this migration. Run again (an interrupted
-- migration), it writes the same rows with a newer Version.
$ollystack_service_rollup_hours;
$ollystack_service_edges_hours;
