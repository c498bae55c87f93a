"""The sink stage: enriched topics -> batches -> ClickHouse, offsets acked after the insert."""
