"""Where the ClickHouse DDL lives: versioned migration files, one text for both backends."""
from __future__ import annotations

from pathlib import Path

# NNNN_name.sql, applied in order by sinks/migrations.py; $placeholders are rendered there.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
