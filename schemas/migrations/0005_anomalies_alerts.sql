-- Anomaly scores per window and key, and alerts; written by the score stage.

-- One row per (tenant, service, operation, window): the window's features, its score, the
-- z-score and baseline of each feature, and whether the detector learned it. The score
-- stage rebuilds its detectors from the newest rows after a restart. SpanName '' is the
-- whole service; its Alert* columns hold what the service's alert state saw.
-- A window scored again after a restart replaces the stored one (ReplacingMergeTree).
CREATE TABLE IF NOT EXISTS $db.ollystack_anomalies
(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    WindowSeconds UInt32,
    Tenant LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    Spans UInt64,
    Errors UInt64,
    ErrorRate Nullable(Float64),
    P50Ms Nullable(Float64),
    P95Ms Nullable(Float64),
    Score Float64,
    Reason LowCardinality(String),
    Detail String CODEC(ZSTD(1)),
    ZLatencyP50 Float64,
    ZLatencyP95 Float64,
    ZErrorRate Float64,
    ZThroughput Float64,
    BaselineP50Ms Nullable(Float64),
    BaselineP95Ms Nullable(Float64),
    BaselineErrorRate Nullable(Float64),
    BaselineSpans Nullable(Float64),
    Learned UInt8,
    Warming UInt8,
    ExemplarCorrelationId String CODEC(ZSTD(1)),
    ExemplarTraceId String CODEC(ZSTD(1)),
    AlertScore Float64,
    AlertOperation String CODEC(ZSTD(1)),
    AlertReason LowCardinality(String),
    AlertCorrelationId String CODEC(ZSTD(1)),
    AlertTraceId String CODEC(ZSTD(1)),
    AlertDetail String CODEC(ZSTD(1)),
    ScoredAt DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ScoredAt)
PARTITION BY toDate(Timestamp)
ORDER BY (WindowSeconds, Tenant, ServiceName, SpanName, Timestamp)
$anomalies_ttl
SETTINGS ttl_only_drop_parts = 1;

-- Alerts as published on the alerts topic: one row per fingerprint, incident and status.
-- Payload is the published JSON; UpdatedAt the event time of the window that decided it.
CREATE TABLE IF NOT EXISTS $db.ollystack_alerts
(
    Fingerprint String,
    StartsAt DateTime64(9),
    Status LowCardinality(String),
    AlertName LowCardinality(String),
    Tenant LowCardinality(String),
    ServiceName LowCardinality(String),
    Operation String,
    Severity LowCardinality(String),
    Predicted UInt8,
    CorrelationId String,
    Score Float64,
    EndsAt DateTime64(9),
    UpdatedAt DateTime64(9),
    Labels Map(LowCardinality(String), String),
    Annotations Map(LowCardinality(String), String),
    GeneratorURL String,
    Payload String CODEC(ZSTD(1)),
    InsertedAt DateTime64(3) DEFAULT now64(3),
    INDEX idx_correlation_id CorrelationId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(UpdatedAt)
ORDER BY (Fingerprint, StartsAt, Status)
$alerts_ttl;
