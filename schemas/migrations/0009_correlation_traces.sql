-- Correlation ID -> traces, sorted by the ID, for lookups. ollystack_trace_links is sorted by
-- TraceId (the worker reads it by trace), so finding the traces of an ID there means checking
-- its bloom filter in every granule: the cost grows with the table. This table holds the same
-- (ID, tenant, trace) triples sorted by CorrelationId, fed by a view from the links, so a lookup
-- reads one granule. CorrelationId comes first, before Tenant, as in the correlation index:
-- lookups without a tenant (auth off, admin keys) use the key as well. Rows keep the tenant
-- of their link (see 0007): a tenant finds only the traces it linked itself.
-- A retried or replayed block of links reaches the view again: its rows carry the same key and
-- collapse into the stored ones when parts merge (LastSeen keeps the max), and readers take
-- each TraceId once, so a repeat changes nothing. A measured alternative, a projection of the
-- links table sorted by CorrelationId, took about twice as long per lookup on chDB, is not
-- chosen for DISTINCT or in-order reads, and needs a merge mode for an AggregatingMergeTree.
-- LastSeen carries the links' retention.
CREATE TABLE IF NOT EXISTS $db.ollystack_correlation_traces
(
    CorrelationId String CODEC(ZSTD(1)),
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    LastSeen SimpleAggregateFunction(max, DateTime64(9))
)
ENGINE = AggregatingMergeTree
ORDER BY (CorrelationId, Tenant, TraceId)
$correlation_ttl_last_seen;

-- The view comes before the backfill, so a link stored in between is in both (and collapses).
CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_correlation_traces_mv
TO $db.ollystack_correlation_traces
AS SELECT
    CorrelationId,
    Tenant,
    TraceId,
    max(LastSeen) AS LastSeen
FROM $db.ollystack_trace_links
WHERE CorrelationId != '' AND TraceId != ''
GROUP BY CorrelationId, Tenant, TraceId;

-- Links stored before this migration, so that their IDs are found too. Run again (an
-- interrupted migration), it adds rows that collapse into the same ones.
INSERT INTO $db.ollystack_correlation_traces (CorrelationId, Tenant, TraceId, LastSeen)
SELECT CorrelationId, Tenant, TraceId, max(LastSeen)
FROM $db.ollystack_trace_links
WHERE CorrelationId != '' AND TraceId != ''
GROUP BY CorrelationId, Tenant, TraceId;
