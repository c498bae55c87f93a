-- Tenants on trace links and exemplars. A trace ID is the client's: two tenants can send the
-- same one (a call across tenants carries its traceparent), and a link of one tenant must not
-- label, or be looked up for, the other's trace. Links are read by (Tenant, TraceId); the
-- sort key gains Tenant at its end (ClickHouse allows appending a column added in the same
-- statement). Rows stored before this migration belong to tenant '' (auth off).
ALTER TABLE $db.ollystack_trace_links
    ADD COLUMN IF NOT EXISTS Tenant LowCardinality(String) CODEC(ZSTD(1)) FIRST,
    MODIFY ORDER BY (TraceId, CorrelationId, Source, Priority, Tenant);

-- An exemplar names a trace of its resource's tenant.
ALTER TABLE $db.metric_exemplars
    ADD COLUMN IF NOT EXISTS Tenant LowCardinality(String) CODEC(ZSTD(1));
