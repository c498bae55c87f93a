-- Spans sorted by trace, for every read of whole traces (correlation lookups, a trace by ID,
-- request analysis, search summaries). otel_traces keeps the Collector's sort key
-- (ServiceName, SpanName, time), which scatters a trace's spans over as many granules as it
-- has spans: at 10M spans a 50-span lookup decompressed every column of ~36 granules of 8192
-- rows, and FINAL merged them across parts (benchmarks/correlation_lookup.py: 150-220 ms p50
-- for the spans alone). Here a trace's spans sit together in granules of 1024 rows, so the
-- same read touches a few small granules (30 ms p50; a whole lookup 110 -> 75 ms p50); the
-- price is a second copy of the spans, 1.17 times otel_traces' size (450 against 386 MiB at 10M).
-- A view keeps it up to date whoever writes otel_traces (the worker, replay, a Collector).
-- Rows carry otel_traces' replacing key, TraceId first: a replayed or retried span collapses
-- here as it does there, and readers take one row per key (LIMIT 1 BY) instead of FINAL.
-- The columns are otel_traces' own (AS), and of its skip indexes only the TraceId filter stays:
-- every part spans the whole TraceId key space, so the primary key alone picks a granule per
-- wanted trace in every part (143 granules for 5 traces in 29 parts at 10M); the filter drops
-- those of parts that do not hold the trace (15 left; spans read 38 -> 30 ms).
CREATE TABLE IF NOT EXISTS $db.ollystack_trace_spans AS $db.otel_traces
ENGINE = ReplacingMergeTree
PARTITION BY toDate(Timestamp)
PRIMARY KEY TraceId
ORDER BY (TraceId, SpanId, ServiceName, SpanName, toDateTime(Timestamp))
$traces_ttl
SETTINGS index_granularity = 1024, ttl_only_drop_parts = 1;

ALTER TABLE $db.ollystack_trace_spans
    DROP INDEX IF EXISTS idx_res_attr_key,
    DROP INDEX IF EXISTS idx_res_attr_value,
    DROP INDEX IF EXISTS idx_span_attr_key,
    DROP INDEX IF EXISTS idx_span_attr_value,
    DROP INDEX IF EXISTS idx_duration,
    DROP INDEX IF EXISTS idx_correlation_id;

-- The view comes before the backfill, so a span stored in between is in both (and collapses).
CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_trace_spans_mv
TO $db.ollystack_trace_spans
AS SELECT * FROM $db.otel_traces;

-- Spans stored before this migration. Run again (an interrupted migration), it adds rows
-- that collapse into the same ones.
INSERT INTO $db.ollystack_trace_spans SELECT * FROM $db.otel_traces;
