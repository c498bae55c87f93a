"""Query results as API JSON: rows, correlation contexts, alerts and their summaries (pure)."""
