-- Spans sorted by trace, for every read of whole traces (correlation lookups, a trace by ID,
-- request analysis, search summaries). otel_traces keeps the Collector's sort key
-- (ServiceName, SpanName, time), which scatters a trace's spans over as many granules as it
-- has spans: at 10M spans a 50-span lookup decompressed every column of ~36 granules of 8192
-- rows, and FINAL merged them across parts (benchmarks/correlation_lookup.py: 150-220 ms p50
-- for the spans alone). Here a trace's spans sit together in granules of 1024 rows, so the
-- same read touches a few small granules (30 ms p50; a whole lookup 116 -> 69 ms p50); the
-- price is a second copy of the spans, 1.17 times otel_traces' size (450 against 386 MiB at 10M).
-- A view keeps it up to date whoever writes otel_traces (the worker, replay, a Collector).
-- Rows carry otel_traces' replacing key, TraceId first: a replayed or retried span collapses
-- here as it does there, and readers take one row per key (LIMIT 1 BY) instead of FINAL.
CREATE TABLE IF NOT EXISTS $db.ollystack_trace_spans
(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested
    (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested
    (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    CorrelationId String DEFAULT '' CODEC(ZSTD(1)),
    -- Every part spans the whole TraceId key space, so the primary key alone picks a granule
    -- per wanted trace in every part (143 granules for 5 traces in 29 parts at 10M); the
    -- filter drops those of parts that do not hold the trace (15 left; spans read 38 -> 30 ms).
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(Timestamp)
PRIMARY KEY TraceId
ORDER BY (TraceId, SpanId, ServiceName, SpanName, toDateTime(Timestamp))
$traces_ttl
SETTINGS index_granularity = 1024, ttl_only_drop_parts = 1;

-- The view comes before the backfill, so a span stored in between is in both (and collapses).
CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_trace_spans_mv
TO $db.ollystack_trace_spans
AS SELECT * FROM $db.otel_traces;

-- Spans stored before this migration. Run again (an interrupted migration), it adds rows
-- that collapse into the same ones.
INSERT INTO $db.ollystack_trace_spans SELECT * FROM $db.otel_traces;
