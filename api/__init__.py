"""The Starlette query API: correlation lookups, traces, logs, services, RCA."""
