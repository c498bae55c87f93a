-- Tenants in the correlation index. Two tenants can carry one correlation ID (a caller's
-- X-Request-ID across tenants): each must see only the traces of its own rows under it. The
-- index is keyed by (CorrelationId, Tenant); the views write the tenant of the resource.
-- Index rows stored before this migration belong to tenant '' (auth off); lookups with a
-- tenant still find those traces through their trace links.
ALTER TABLE $db.ollystack_correlation_index
    ADD COLUMN IF NOT EXISTS Tenant LowCardinality(String) CODEC(ZSTD(1)) AFTER CorrelationId,
    MODIFY ORDER BY (CorrelationId, Tenant);

DROP VIEW IF EXISTS $db.ollystack_correlation_index_spans_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_correlation_index_spans_mv
TO $db.ollystack_correlation_index
AS SELECT
    CorrelationId,
    ResourceAttributes['tenant.id'] AS Tenant,
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
GROUP BY CorrelationId, Tenant;

DROP VIEW IF EXISTS $db.ollystack_correlation_index_logs_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS $db.ollystack_correlation_index_logs_mv
TO $db.ollystack_correlation_index
AS SELECT
    CorrelationId,
    ResourceAttributes['tenant.id'] AS Tenant,
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
GROUP BY CorrelationId, Tenant;
