"""The warehouse: one interface, two ClickHouse backends (server, embedded chDB)."""
