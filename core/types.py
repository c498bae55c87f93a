"""The shared vocabulary: signal names and the plain shapes rows and columns travel in."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

# The OpenTelemetry signal names, as in OTLP paths (/v1/traces) and the Collector's config.
Signal = Literal["traces", "logs", "metrics"]
SIGNALS: tuple[Signal, ...] = ("traces", "logs", "metrics")

# A row as ClickHouse takes and returns it: column name -> plain Python value.
Row = dict[str, Any]
# Column-major rows for an insert: column name -> values, all of one length.
Columns = Mapping[str, Sequence[Any]]
