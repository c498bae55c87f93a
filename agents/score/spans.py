"""One record's spans, column by column: the otel_traces columns the score stage reads, the
distinct keys among them, and their partial window aggregates.

Everything done per span is vectorized: Arrow reads the text and map columns once per
record (pyarrow.compute), numpy does the arithmetic on the numbers; Python runs once per
distinct key, or (key, window), of a record. A record holds one partition's spans of a
batch, thousands of them, and a few dozen distinct keys: a Python object per span cost
more than the rest of the stage. numpy rather than Arrow for the arithmetic: on the
2-core machines the worker targets an Arrow call costs about 10 us and an Arrow
group_by 0.1 ms whatever the rows, a numpy call about 1 us, and at a record's size the
calls are much of the cost."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agents.score.features import ERROR_STATUSES, Exemplar, Key, WindowAggregate, latency_buckets
from core.tenancy import TENANT_ATTRIBUTE

_TEXT_MAP = pa.map_(pa.string(), pa.string())
_ERROR_VALUES = pa.array(sorted(ERROR_STATUSES), pa.string())
_ID_COLUMNS = {"correlation_id": "CorrelationId", "trace_id": "TraceId", "span_id": "SpanId",
               "parent_span_id": "ParentSpanId"}
_BUCKETS = 1 << 11  # above the bucket of the longest duration (2**64 - 1 ns is in bucket 1109)
_NO_ROW = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Spans:
    """The spans of one record the score stage reads, in record order: one numpy array per
    field, aligned, and the record's ID columns (Arrow strings, no nulls) read at ``rows``.

    ``key_codes`` holds the span's (tenant, service, operation) as three numbers into
    ``key_names``; time_ns is int64, duration_ns uint64 (null and negative as 0), error
    is StatusCode in ERROR_STATUSES, has_correlation_id a non-empty CorrelationId."""

    rows: np.ndarray  # the span's row in the record
    time_ns: np.ndarray
    duration_ns: np.ndarray
    error: np.ndarray
    has_correlation_id: np.ndarray
    key_codes: np.ndarray  # shape (spans, 3)
    key_names: tuple[list[str], list[str], list[str]]
    ids: dict[str, pa.Array]  # correlation_id, trace_id, span_id, parent_span_id of every row of the record

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, keep: np.ndarray) -> Spans:
        """The spans where ``keep`` (a boolean array) is true."""
        if keep.all():
            return self
        return Spans(self.rows[keep], self.time_ns[keep], self.duration_ns[keep], self.error[keep],
                     self.has_correlation_id[keep], self.key_codes[keep], self.key_names, self.ids)

    def text(self, name: str, at: np.ndarray | None = None) -> pa.Array:
        """ID column ``name`` of the spans (of the spans ``at``, indices into them)."""
        values = self.ids[name]
        if at is None and len(self.rows) == len(values):  # every row: rows are 0, 1, ...
            return values
        return pc.take(values, pa.array(self.rows if at is None else self.rows[at]))


def _text(values: pa.ChunkedArray | None, count: int) -> pa.Array:
    if values is None:
        return pc.fill_null(pa.nulls(count, pa.string()), "")
    values = values.combine_chunks()
    if values.type != pa.string():  # a LowCardinality column comes as a dictionary
        values = pc.cast(values, pa.string())
    return pc.fill_null(values, "") if values.null_count else values


def _service(values: pa.ChunkedArray | None, count: int) -> pa.Array:
    if values is None:
        raise ValueError("missing")
    return _text(values, count)


def _time_ns(values: pa.ChunkedArray | None, count: int) -> np.ndarray:
    if values is None:
        raise ValueError("missing")
    kind, values = values.type, values.combine_chunks()
    if pa.types.is_timestamp(kind):
        if kind.unit != "ns":
            values = pc.cast(values, pa.timestamp("ns", kind.tz))
        values = values.view(pa.int64())  # a timestamp[ns] is its count of ns: no copy
    elif pa.types.is_integer(kind):
        values = pc.cast(values, pa.int64())
    else:
        raise ValueError(f"{kind} is not a timestamp")
    times: np.ndarray = (pc.fill_null(values, 0) if values.null_count else values).to_numpy()
    return times


def _duration_ns(values: pa.ChunkedArray | None, count: int) -> np.ndarray:
    if values is None:
        return np.zeros(count, np.uint64)
    if not pa.types.is_integer(values.type):
        raise ValueError(f"{values.type} is not an integer")
    values = values.combine_chunks()
    durations: np.ndarray = (pc.fill_null(values, 0) if values.null_count else values).to_numpy()
    return durations if durations.dtype == np.uint64 else np.maximum(durations, 0).astype(np.uint64)


def _tenant(values: pa.ChunkedArray | None, count: int) -> pa.Array:
    if values is None:
        return _text(None, count)
    if not pa.types.is_map(values.type):
        raise ValueError(f"{values.type} is not a map")
    if values.type.key_type != pa.string() or values.type.item_type != pa.string():
        values = pc.cast(values, _TEXT_MAP)  # keys of a LowCardinality column may come as a dictionary
    # "last", as a dict built from the map's pairs keeps a repeated key's last value.
    tenants = pc.map_lookup(values, pa.scalar(TENANT_ATTRIBUTE, pa.string()), "last").combine_chunks()
    if tenants.null_count == len(tenants):  # no tenants (auth off): encoded already, as _codes would
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(tenants), np.int32)), pa.array([""]))
    return pc.fill_null(tenants, "") if tenants.null_count else tenants


def _error(values: pa.ChunkedArray | None, count: int) -> np.ndarray:
    failed: np.ndarray = pc.is_in(_text(values, count), value_set=_ERROR_VALUES).to_numpy(zero_copy_only=False)
    return failed


# otel_traces column -> how it is read (the column, None when missing; the number of rows)
_READERS: dict[str, Callable[[pa.ChunkedArray | None, int], Any]] = {
    "Timestamp": _time_ns, "ServiceName": _service, "ResourceAttributes": _tenant, "SpanName": _text,
    "Duration": _duration_ns, "StatusCode": _error,
    **{column: _text for column in _ID_COLUMNS.values()},
}


def _codes(text: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Each value's number among the distinct values, and those values."""
    # A dictionary here is one of ours (_tenant's), its values distinct: read columns are plain text.
    encoded = text if pa.types.is_dictionary(text.type) else pc.dictionary_encode(text)
    return encoded.indices.to_numpy().astype(np.int64), encoded.dictionary.to_pylist()


def read_spans(record: pa.Table) -> Spans:
    """The spans of an otel_traces table, in row order. Rows without a positive Timestamp
    or with an empty ServiceName are left out: they cannot be placed in a window or a key
    (the warehouse keeps them anyway). Columns other than those two may be missing (read
    as empty). Raises ValueError naming a column that is missing or whose type cannot be
    read."""
    count = record.num_rows
    read: dict[str, Any] = {}
    for name, reader in _READERS.items():
        try:
            read[name] = reader(record.column(name) if name in record.column_names else None, count)
        except (pa.ArrowException, ValueError) as exc:
            raise ValueError(f"otel_traces column {name}: {exc}") from None
    time_ns, services, tenants, operations = (read[c] for c in ("Timestamp", "ServiceName", "ResourceAttributes",
                                                                 "SpanName"))
    ids = {name: read[column] for name, column in _ID_COLUMNS.items()}
    (tenant, tenant_names), (service, service_names), (operation, operation_names) = (
        _codes(tenants), _codes(services), _codes(operations))
    has_cid = pc.not_equal(ids["correlation_id"], "").to_numpy(zero_copy_only=False)
    spans = Spans(np.arange(count), time_ns, read["Duration"], read["StatusCode"], has_cid,
                  np.column_stack([tenant, service, operation]), (tenant_names, service_names, operation_names), ids)
    no_service = service_names.index("") if "" in service_names else -1
    return spans.select((time_ns > 0) & (service != no_service))


def distinct_keys(spans: Spans) -> tuple[np.ndarray, list[Key], list[int]]:
    """Per span, the number of its (tenant, service, operation) among the distinct ones,
    numbered in order of first appearance; those keys; the time of each one's first span."""
    sizes = [max(len(names), 1) for names in spans.key_names]
    if sizes[0] * sizes[1] * sizes[2] >= 1 << 62:
        raise ValueError("a record with more distinct tenants x services x operations than fit in 62 bits")
    codes = spans.key_codes
    combined = (codes[:, 0] * sizes[1] + codes[:, 1]) * sizes[2] + codes[:, 2]
    _, first_rows, per_span = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first_rows)  # np.unique numbers by value; renumber by first appearance
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    first_rows = first_rows[order]
    tenants, services, operations = spans.key_names
    keys = [(tenants[t], services[s], operations[o]) for t, s, o in codes[first_rows].tolist()]
    return renumber[per_span.reshape(-1)], keys, spans.time_ns[first_rows].tolist()


def window_partials(spans: Spans, window: np.ndarray, at: np.ndarray, targets: np.ndarray
                    ) -> list[tuple[int, int, WindowAggregate]]:
    """(target, window, partial aggregate) for each (target, window) a record's spans count
    for: span ``at[i]`` (of ``spans``, in ``window[at[i]]``) counts for ``targets[i]`` (a
    span may count for several targets). The exemplars are the first of the slowest
    spans and the first failed span with a correlation ID."""
    if not len(at):
        return []
    low = int(window.min())
    width = int(window.max()) - low + 1
    codes, group = np.unique(targets * width + (window[at] - low), return_inverse=True)
    group = group.reshape(-1)
    count = len(codes)
    duration = spans.duration_ns[at]
    slowest_ns = np.zeros(count, np.uint64)
    np.maximum.at(slowest_ns, group, duration)
    slowest = duration == slowest_ns[group]
    error = spans.error[at]
    failed = error & spans.has_correlation_id[at]
    slow_rows, error_rows = _first(count, group[slowest], at[slowest]), _first(count, group[failed], at[failed])
    exemplars = _exemplars(spans, np.concatenate([slow_rows, error_rows]))
    buckets: list[dict[int, int]] = [{} for _ in range(count)]
    pairs, pair_counts = np.unique(group * _BUCKETS + latency_buckets(duration), return_counts=True)
    for g, b, n in zip((pairs // _BUCKETS).tolist(), (pairs % _BUCKETS).tolist(), pair_counts.tolist(), strict=True):
        buckets[g][b] = n
    spans_n = np.bincount(group, minlength=count).tolist()
    errors_n = np.bincount(group[error], minlength=count).tolist()
    return [(code // width, low + code % width, WindowAggregate(
                spans_n[g], errors_n[g], buckets[g], int(slowest_ns[g]), exemplars[g], exemplars[count + g]))
            for g, code in enumerate(codes.tolist())]


def _first(count: int, group: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per group (0 .. count - 1), its lowest span among ``at`` (_NO_ROW without one)."""
    first = np.full(count, _NO_ROW, np.int64)
    np.minimum.at(first, group, at)
    return first


def _exemplars(spans: Spans, at: np.ndarray) -> list[Exemplar]:
    """(correlation ID, trace ID) of each span ``at``; ("", "") for _NO_ROW."""
    found = at != _NO_ROW
    cids, traces = (spans.text(name, at[found]).to_pylist() for name in ("correlation_id", "trace_id"))
    out: list[Exemplar] = [("", "")] * len(at)
    for i, cid, trace in zip(np.flatnonzero(found).tolist(), cids, traces, strict=True):
        out[i] = (cid, trace)
    return out
