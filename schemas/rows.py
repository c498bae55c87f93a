"""ClickHouse rows from parsed OTLP export requests: the one import for decoders and ``to_columns``.

The decoders live in ``span_rows``, ``log_rows`` and ``metric_rows`` (one signal a module);
this module re-exports them and turns row lists into the column-major form that
``Warehouse.insert`` takes.

Row conventions, shared by all signals (otel-compat sections 2 and 5):

- keys are ClickHouse column names in DDL order; MATERIALIZED columns are absent; Nested
  columns appear flattened (``Events.Timestamp``, ``Exemplars.TraceId`` ...) as lists;
- DateTime64(9) values are int nanoseconds, Map values str->str dicts, Arrays lists;
- IDs are lowercase hex, '' when empty or all zero; ``CorrelationId`` is '' until the
  enrich agent fills it in;
- resource- and scope-level dicts are shared by the rows of that resource or scope rather
  than copied per row (it is the hot path): copy one before mutating it.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from core.errors import RowsRefusedError
from schemas.log_rows import LOG_COLUMNS, LogRecordRow, decode_logs
from schemas.metric_rows import (
    EXEMPLAR_COLUMNS,
    decode_metric_exemplars,
    decode_metrics,
    exemplar_rows,
)
from schemas.span_rows import SPAN_COLUMNS, SpanRecord, decode_spans

__all__ = [
    "EXEMPLAR_COLUMNS",
    "LOG_COLUMNS",
    "SPAN_COLUMNS",
    "LogRecordRow",
    "SpanRecord",
    "decode_logs",
    "decode_metric_exemplars",
    "decode_metrics",
    "decode_spans",
    "exemplar_rows",
    "to_columns",
]


def to_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows (dicts) as columns: {column: [value of row 0, value of row 1, ...]}.

    Columns come in the key order of the first row; ``{}`` for no rows. Values are not
    copied. Raises RowsRefusedError when a row has a different set of keys from the first,
    so a malformed batch fails here and not half-way through an insert.
    """
    if not rows:
        return {}
    names = list(rows[0])
    width = len(names)
    try:
        columns = {name: list(map(itemgetter(name), rows)) for name in names}
    except KeyError as missing:
        raise RowsRefusedError(f"row lacks column {missing.args[0]!r} that the first row has") from None
    # Same count plus every first-row key present means the same key set.
    for index, row in enumerate(rows):
        if len(row) != width:
            extra = sorted(set(row) - set(names))
            raise RowsRefusedError(f"row {index} has columns the first row lacks: {extra}")
    return columns
