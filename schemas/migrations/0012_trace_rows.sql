-- The lookup copy: every span, log and exemplar as the JSON row the API returns, keyed by its
-- trace (schemas/trace_rows.py), replacing 0011's columnar copy of the spans. A correlation
-- lookup read three tables: the spans' copy (about 30 columns), otel_logs and
-- metric_exemplars, both sorted by time and read with FINAL. At 10M spans that was 70-90 ms
-- p50 of engine time for 50 spans and 10 logs (benchmarks/correlation_lookup.py), most of it
-- fixed costs per table, part and column: index analysis, a reader per column file, and
-- decompressing blocks far larger than the rows wanted. Here a lookup reads one table and a
-- few columns: about 20 ms.
-- * Unpartitioned, so the parts a lookup probes follow the merges (about 10-15 at 10M), not
--   the days of retention; rows expire by TTL per kind (sinks/retention.py).
-- * Granules of 256 rows and compressed blocks of at most 64 KiB: a lookup decompresses a
--   few blocks of Row and of the bloom filter instead of up to 1 MiB per granule touched.
-- * The bloom filter on LookupKey drops the parts that do not hold a wanted trace: every
--   part spans the whole key space, so the primary key alone picks a granule in each.
-- * ParentSpanId .. StatusCode are kept as columns for trace summaries (search results).
-- Views keep it up to date whoever writes the source tables (the worker, replay, a
-- Collector). The price: about 1.9 times otel_traces' size at 10M spans with 2M logs (see the
-- README's Architecture), against 0.6 for the copy it replaces.
CREATE TABLE IF NOT EXISTS $db.ollystack_trace_rows
(
    LookupKey String CODEC(ZSTD(1)),
    Kind UInt8 CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    RowKey UInt64 CODEC(ZSTD(1)),
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    CorrelationId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    Row String CODEC(ZSTD(1)),
    INDEX idx_lookup_key LookupKey TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PRIMARY KEY LookupKey
ORDER BY (LookupKey, Kind, SpanId, RowKey)
$trace_rows_ttl
SETTINGS index_granularity = 256, min_compress_block_size = 4096, max_compress_block_size = 65536;

-- Each view comes before its backfill, so a row stored in between is in both (and collapses).
CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_trace_rows_spans_mv TO $db.ollystack_trace_rows
AS $spans_as_trace_rows;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_trace_rows_logs_mv TO $db.ollystack_trace_rows
AS $logs_as_trace_rows;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_trace_rows_exemplars_mv TO $db.ollystack_trace_rows
AS $exemplars_as_trace_rows;

-- Rows stored before this migration. Run again (an interrupted migration), it adds rows that
-- collapse into the same ones.
INSERT INTO $db.ollystack_trace_rows $spans_as_trace_rows;
INSERT INTO $db.ollystack_trace_rows $logs_as_trace_rows;
INSERT INTO $db.ollystack_trace_rows $exemplars_as_trace_rows;

DROP VIEW IF EXISTS $db.ollystack_trace_spans_mv;
DROP TABLE IF EXISTS $db.ollystack_trace_spans;

-- A correlation ID's traces from one table, rebuilt: the traces of rows stored under an ID
-- join the linked ones, so a lookup resolves its ID with one read sorted by the ID instead of
-- two (the links' copy and the correlation index: 16-21 ms at 10M spans). Granules of 1024
-- rows and blocks of at most 64 KiB: one ID's few rows no longer cost a granule of 8192 rows
-- of every column (the read: 10 -> 4 ms at 10M spans). LastSeen of a row's trace is the row's
-- time, as the index keeps it. The views come before the backfills, so a row stored in
-- between is in both (and collapses); a link stored before the new links view is in the
-- backfill.
DROP VIEW IF EXISTS $db.ollystack_correlation_traces_mv;
DROP TABLE IF EXISTS $db.ollystack_correlation_traces;

CREATE TABLE IF NOT EXISTS $db.ollystack_correlation_traces
(
    CorrelationId String CODEC(ZSTD(1)),
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    LastSeen SimpleAggregateFunction(max, DateTime64(9))
)
ENGINE = AggregatingMergeTree
ORDER BY (CorrelationId, Tenant, TraceId)
$correlation_ttl_last_seen
SETTINGS index_granularity = 1024, min_compress_block_size = 4096, max_compress_block_size = 65536;

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

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_correlation_traces_spans_mv
TO $db.ollystack_correlation_traces
AS SELECT
    CorrelationId,
    ResourceAttributes['tenant.id'] AS Tenant,
    TraceId,
    max(Timestamp) AS LastSeen
FROM $db.otel_traces
WHERE CorrelationId != '' AND TraceId != ''
GROUP BY CorrelationId, Tenant, TraceId;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_correlation_traces_logs_mv
TO $db.ollystack_correlation_traces
AS SELECT
    CorrelationId,
    ResourceAttributes['tenant.id'] AS Tenant,
    TraceId,
    max(Timestamp) AS LastSeen
FROM $db.otel_logs
WHERE CorrelationId != '' AND TraceId != ''
GROUP BY CorrelationId, Tenant, TraceId;

INSERT INTO $db.ollystack_correlation_traces (CorrelationId, Tenant, TraceId, LastSeen)
SELECT CorrelationId, Tenant, TraceId, max(LastSeen)
FROM $db.ollystack_trace_links
WHERE CorrelationId != '' AND TraceId != ''
GROUP BY CorrelationId, Tenant, TraceId;

-- The traces of rows stored before this migration, from the correlation index.
INSERT INTO $db.ollystack_correlation_traces (CorrelationId, Tenant, TraceId, LastSeen)
SELECT CorrelationId, Tenant, TraceId, max(LastSeen)
FROM $db.ollystack_correlation_index
ARRAY JOIN TraceIds AS TraceId
WHERE CorrelationId != '' AND TraceId != ''
GROUP BY CorrelationId, Tenant, TraceId;
