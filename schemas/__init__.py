"""OTLP decode/encode helpers, enriched-row and alert formats, ClickHouse DDL and migrations."""
