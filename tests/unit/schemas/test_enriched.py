"""Enriched records (version 3, Arrow IPC): read back as written, cut to fit the topic's
message limit, a row too large on its own shortened and marked, older versions refused."""
from __future__ import annotations

import random

import orjson
import pyarrow as pa
import pytest

from core.errors import DecodeError
from schemas.enriched import TRUNCATED_ATTRIBUTE, decode_enriched, encode_enriched

LIMIT = 256 * 1024
SCHEMA = pa.schema([("SpanId", pa.string()), ("SpanAttributes", pa.map_(pa.string(), pa.string())),
                    ("Timestamp", pa.timestamp("ns", tz="UTC"))])


def spans(attributes: list[str]) -> pa.Table:
    return pa.Table.from_pylist([{"SpanId": f"{i:016x}", "SpanAttributes": [("payload", text)], "Timestamp": i}
                                 for i, text in enumerate(attributes)], schema=SCHEMA)


def _random_text(n: int, seed: int, low: int = 0x21, high: int = 0x7E) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randrange(low, high)) for _ in range(n))


def test_a_record_reads_back_as_written() -> None:
    rows = spans(["x", "y"])
    encoded = encode_enriched("traces", "otel_traces", rows, LIMIT)
    assert len(encoded.values) == 1 and encoded.truncated_rows == 0
    record = decode_enriched(encoded.values[0])
    assert (record.signal, record.table) == ("traces", "otel_traces")
    assert record.rows.to_pylist() == rows.to_pylist()


def test_rows_are_spread_over_records_of_the_limit_in_order() -> None:
    rows = spans([_random_text(20_000, i) for i in range(100)])  # ~2 MB that zstd cannot shrink much
    encoded = encode_enriched("traces", "otel_traces", rows, 64 * 1024)
    assert len(encoded.values) >= 2 and all(len(v) <= 64 * 1024 for v in encoded.values)
    ids = [r["SpanId"] for v in encoded.values for r in decode_enriched(v).rows.to_pylist()]
    assert ids == [f"{i:016x}" for i in range(100)] and encoded.truncated_rows == 0


@pytest.mark.parametrize("text", [_random_text(400_000, 1), _random_text(200_000, 2, 0x4E00, 0x9FFF)],
                         ids=["ascii", "cjk"])
def test_a_row_too_large_alone_is_shortened_and_says_so(text: str) -> None:
    encoded = encode_enriched("traces", "otel_traces", spans(["small", text]), LIMIT)
    assert all(len(v) <= LIMIT for v in encoded.values) and encoded.truncated_rows == 1
    rows = [r for v in encoded.values for r in decode_enriched(v).rows.to_pylist()]
    assert [r["SpanId"] for r in rows] == [f"{0:016x}", f"{1:016x}"]
    shortened = dict(rows[1]["SpanAttributes"])
    assert shortened["payload"].endswith("…") and "bytes of text dropped" in shortened[TRUNCATED_ATTRIBUTE]
    assert TRUNCATED_ATTRIBUTE not in dict(rows[0]["SpanAttributes"])


def test_a_row_that_cannot_fit_is_an_error() -> None:
    many = [(f"k{i}-{_random_text(8, i)}", "v") for i in range(40_000)]  # small values, too many of them
    rows = pa.Table.from_pylist([{"SpanId": "1", "SpanAttributes": many, "Timestamp": 0}], schema=SCHEMA)
    with pytest.raises(ValueError, match="does not fit"):
        encode_enriched("traces", "otel_traces", rows, 128 * 1024)


@pytest.mark.parametrize(("value", "message"), [
    pytest.param(orjson.dumps({"v": 2, "signal": "traces", "tables": {}}), "version 1 or 2", id="json-v2"),
    pytest.param(b"\xff\x00garbage", "not an enriched record", id="garbage"),
    pytest.param(b"", "not an enriched record", id="empty"),
])
def test_what_is_not_a_version_3_record_is_refused_with_the_reason(value: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_enriched(value)


def test_a_record_naming_a_table_of_another_signal_is_refused() -> None:
    value = encode_enriched("logs", "otel_traces", spans(["x"]), LIMIT).values[0]
    with pytest.raises(DecodeError, match="logs record has rows for table 'otel_traces'"):
        decode_enriched(value)
