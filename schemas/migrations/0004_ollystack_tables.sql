-- OllyStack's own tables: the correlation index, trace links, exemplars, service edges.

-- Trace-level links: which correlation IDs a trace carries, and from which source.
-- A link that arrives after part of the trace was stored still reaches every span and
-- log of the trace, because lookups resolve correlation -> traces -> rows at query time.
CREATE TABLE IF NOT EXISTS $db.ollystack_trace_links
(
    TraceId String CODEC(ZSTD(1)),
    CorrelationId String CODEC(ZSTD(1)),
    Source LowCardinality(String) CODEC(ZSTD(1)),
    Priority UInt8,
    FirstSeen SimpleAggregateFunction(min, DateTime64(9)),
    LastSeen SimpleAggregateFunction(max, DateTime64(9)),
    INDEX idx_correlation_id CorrelationId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = AggregatingMergeTree
ORDER BY (TraceId, CorrelationId, Source, Priority)
$correlation_ttl_last_seen
SETTINGS non_replicated_deduplication_window = 10000;

-- The correlation index: correlation ID -> first/last seen, services, counts, errors.
-- Counts are exact distinct states of span and log identities, so a block that reaches
-- the views twice (retry, replay) does not count twice.
CREATE TABLE IF NOT EXISTS $db.ollystack_correlation_index
(
    CorrelationId String CODEC(ZSTD(1)),
    FirstSeen SimpleAggregateFunction(min, DateTime64(9)),
    LastSeen SimpleAggregateFunction(max, DateTime64(9)),
    Services SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    TraceIds SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    Spans AggregateFunction(uniqExact, String, String),
    Logs AggregateFunction(uniqExact, UInt64),
    ErrorSpans AggregateFunction(uniqExact, String, String),
    ErrorLogs AggregateFunction(uniqExact, UInt64),
    MaxDurationNs SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY CorrelationId
$correlation_ttl_last_seen;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_correlation_index_spans_mv
TO $db.ollystack_correlation_index
AS SELECT
    CorrelationId,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen,
    groupUniqArray(toString(ServiceName)) AS Services,
    groupUniqArray(TraceId) AS TraceIds,
    uniqExactState(TraceId, SpanId) AS Spans,
    uniqExactStateIf(toUInt64(0), 0) AS Logs,
    uniqExactStateIf(TraceId, SpanId, StatusCode IN ('Error', 'STATUS_CODE_ERROR')) AS ErrorSpans,
    uniqExactStateIf(toUInt64(0), 0) AS ErrorLogs,
    max(Duration) AS MaxDurationNs
FROM $db.otel_traces
WHERE CorrelationId != ''
GROUP BY CorrelationId;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_correlation_index_logs_mv
TO $db.ollystack_correlation_index
AS SELECT
    CorrelationId,
    min(Timestamp) AS FirstSeen,
    max(Timestamp) AS LastSeen,
    groupUniqArray(toString(ServiceName)) AS Services,
    groupUniqArrayIf(TraceId, TraceId != '') AS TraceIds,
    uniqExactStateIf(TraceId, SpanId, 0) AS Spans,
    uniqExactState(cityHash64(Timestamp, TraceId, SpanId, SeverityNumber, Body, LogAttributes, ResourceAttributes)) AS Logs,
    uniqExactStateIf(TraceId, SpanId, 0) AS ErrorSpans,
    uniqExactStateIf(cityHash64(Timestamp, TraceId, SpanId, SeverityNumber, Body, LogAttributes, ResourceAttributes), SeverityNumber >= 17) AS ErrorLogs,
    toUInt64(0) AS MaxDurationNs
FROM $db.otel_logs
WHERE CorrelationId != ''
GROUP BY CorrelationId;

-- Exemplars of every metric point, with their trace's correlation ID.
CREATE TABLE IF NOT EXISTS $db.metric_exemplars
(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    MetricName LowCardinality(String) CODEC(ZSTD(1)),
    MetricType LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Value Float64 CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    CorrelationId String DEFAULT '' CODEC(ZSTD(1)),
    FilteredAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_correlation_id CorrelationId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (MetricName, ServiceName, Timestamp, TraceId, SpanId)
$exemplars_ttl
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- Calls between services (a child span whose parent is in another service), per minute.
CREATE TABLE IF NOT EXISTS $db.ollystack_service_edges
(
    Minute DateTime CODEC(Delta, ZSTD(1)),
    Caller LowCardinality(String) CODEC(ZSTD(1)),
    Callee LowCardinality(String) CODEC(ZSTD(1)),
    CalleeOperation LowCardinality(String) CODEC(ZSTD(1)),
    Calls AggregateFunction(uniqExact, String, String),
    Errors AggregateFunction(uniqExact, String, String),
    DurationNs AggregateFunction(quantiles(0.5, 0.95, 0.99), UInt64),
    MaxDurationNs SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(Minute)
ORDER BY (Caller, Callee, CalleeOperation, Minute)
$traces_ttl_minute;
