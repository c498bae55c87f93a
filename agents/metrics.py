"""The worker's Prometheus metrics, on a registry of its own per worker."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    """Counters and histograms of the enrich and sink stages and of the rollup refresh."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter("ollystack_enrich_records", "raw records enriched", ["signal"], registry=r)
        # Every stage alike, so one dashboard query shows the whole flow: records read from
        # a topic, and records written to the next one (enriched records, alerts).
        self.stage_in = Counter("ollystack_stage_records_in", "records a stage read, by topic",
                                ["stage", "topic"], registry=r)
        self.stage_out = Counter("ollystack_stage_records_out", "records a stage wrote, by topic",
                                 ["stage", "topic"], registry=r)
        self.items = Counter("ollystack_enrich_items", "spans, logs and points enriched", ["signal"], registry=r)
        self.correlation = Counter("ollystack_correlation_ids", "correlation IDs by outcome",
                                   ["outcome"], registry=r)
        self.rejected = Counter("ollystack_correlation_rejected", "correlation IDs rejected by reason",
                                ["reason"], registry=r)
        self.semconv = Counter("ollystack_semconv_rewritten", "deprecated attributes renamed", registry=r)
        self.truncated_rows = Counter("ollystack_enrich_truncated_rows",
                                      "rows whose longest text was shortened to fit a Kafka record", ["signal"],
                                      registry=r)
        self.overflow = Counter("ollystack_cardinality_overflow", "attribute values replaced by the overflow marker",
                                registry=r)
        self.deadletters = Counter("ollystack_deadletters", "records sent to the dead-letter topic, by why",
                                   ["source_topic", "stage", "kind"], registry=r)
        self.batch_rows = Histogram("ollystack_sink_batch_rows", "rows per sink batch", ["signal"], registry=r,
                                    buckets=(10, 100, 500, 1000, 5000, 10000, 50000))
        self.insert_seconds = Histogram("ollystack_sink_insert_seconds", "ClickHouse insert latency",
                                        ["signal"], registry=r)
        self.decode_seconds = Histogram("ollystack_ingest_decode_seconds", "decoding, enriching and deciding one "
                                        "batch of raw records (the engine's decoding session and Python)",
                                        ["signal"], registry=r)
        self.publish_seconds = Histogram("ollystack_ingest_publish_seconds",
                                         "handing one batch's rows to the enriched topic's producer", ["signal"],
                                         registry=r)
        self.insert_retries = Counter("ollystack_sink_insert_retries", "failed inserts retried", ["signal"], registry=r)
        self.rollup_minutes = Counter("ollystack_rollup_minutes_refreshed", "dirty minutes recomputed into the rollups",
                                      registry=r)
        self.rollup_pending = Gauge("ollystack_rollup_pending_minutes",
                                    "dirty minutes left waiting after the last refresh", registry=r)
        self.rollup_lag = Gauge("ollystack_rollup_lag_seconds",
                                "age of the latest mark of the oldest minute left waiting after the last refresh",
                                registry=r)
        self.rollup_seconds = Histogram("ollystack_rollup_refresh_seconds", "duration of one rollup refresh",
                                        registry=r)
        self.rollup_errors = Counter("ollystack_rollup_refresh_errors", "rollup refreshes that failed, by whether "
                                     "retrying can help", ["retriable"], registry=r)

    def count_enrich(self, signal: str, counts: dict[str, int]) -> None:
        """Fold an EnrichResult's counts into the metrics."""
        for key, value in counts.items():
            if key in ("spans", "logs", "points"):
                self.items.labels(signal).inc(value)
            elif key == "correlation_generated":
                self.correlation.labels("generated").inc(value)
            elif key == "correlation_found":
                self.correlation.labels("found").inc(value)
            elif key.startswith("correlation_rejected:"):
                self.rejected.labels(key.split(":", 1)[1]).inc(value)
            elif key == "correlation_rejected":
                self.correlation.labels("rejected").inc(value)
            elif key == "semconv_rewritten":
                self.semconv.inc(value)
            elif key == "cardinality_overflow":
                self.overflow.inc(value)
