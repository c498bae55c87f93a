-- Call paths in the anomaly rows (agents/score/topology.py): a service's anomaly is muted
-- while a service it calls is anomalous in the same window, so one fault alerts once.
-- Callees: the services this service called around the window (service-wide rows), read
-- back with the rows after a restart so the call graph survives it.
-- AlertInhibitedBy: the anomalous callees (or, for throughput, callers) explaining the
-- window; a window explained by others counts as normal for this service's alert.
ALTER TABLE $db.ollystack_anomalies
    ADD COLUMN IF NOT EXISTS AlertInhibitedBy Array(LowCardinality(String)) AFTER AlertDetail,
    ADD COLUMN IF NOT EXISTS Callees Array(LowCardinality(String)) AFTER AlertInhibitedBy;
