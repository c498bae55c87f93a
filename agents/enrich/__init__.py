"""The enrich stage: raw OTLP records -> rows with correlation IDs, normalised and limited."""
