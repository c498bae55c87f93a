"""The score stage: per-window features of enriched spans, anomaly scores and alerts."""
