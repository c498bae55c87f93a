"""OTLP values as engine SQL give exactly the text forms schemas/otlp_values.py writes."""
from __future__ import annotations

import math
import random
import struct

import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from agents.ingest.logic import typed_attributes
from agents.ingest.staging import StagedBatch, write_schemas
from schemas.otlp_sql import attribute_map, double_text, hex_id, span_kind, status_code, typed_values
from schemas.otlp_values import any_value_to_python, any_value_to_string, double_to_string
from schemas.otlp_wire import ATTRIBUTES
from sinks.engine import Engine, staging_name


def doubles() -> list[float]:
    rng = random.Random(20261202)
    values = [0.0, -0.0, 1.0, -1.5, 0.1, 1e21, 1e20, 1e-6, 1e-7, 1.5e-7, 5e-324, 1.7976931348623157e308,
              math.nan, math.inf, -math.inf, 2.0**53, 2.0**63, 123456789012345680000.0]
    for _ in range(20_000):
        kind = rng.random()
        if kind < 0.3:
            values.append(rng.uniform(-1e6, 1e6))
        elif kind < 0.5:
            values.append(round(rng.uniform(0, 1000), rng.randrange(4)))
        elif kind < 0.8:
            values.append(struct.unpack("d", rng.randbytes(8))[0])
        else:
            values.append(rng.random() * 10 ** rng.randrange(-10, 25))
    return values


def test_doubles_are_written_as_ecmascript_writes_them(engine: Engine) -> None:
    values = doubles()
    table = staging_name("doubles")
    engine.run(f"CREATE TABLE {table} (i UInt32, v Float64) ENGINE = Memory")
    try:
        engine.load_arrow(table, pa.table({"i": pa.array(range(len(values)), pa.uint32()),
                                           "v": pa.array(values, pa.float64())}))
        got = engine.arrow(f"SELECT {double_text('v')} AS t FROM {table} ORDER BY i").column("t").to_pylist()
    finally:
        engine.run(f"DROP TABLE {table}")
    wrong = [(v, g) for v, g in zip(values, got, strict=True) if g != double_to_string(v)]
    assert wrong == []


HEX_IDS = [
    pytest.param(bytes.fromhex("5B8EFFF798038103D269B633813FC60C"), "5b8efff798038103d269b633813fc60c",
                 id="trace-id-lowercase"),
    pytest.param(bytes.fromhex("00F067AA0BA902B7"), "00f067aa0ba902b7", id="span-id-leading-zero"),
    pytest.param(b"", "", id="empty"),
    pytest.param(bytes(16), "", id="all-zero-trace-id"),
    pytest.param(bytes(3), "", id="all-zero-any-length"),
    pytest.param(b"\x01\x02\x03\x04\x05", "0102030405", id="odd-length-kept"),
]


@pytest.mark.parametrize(("raw", "text"), HEX_IDS)
def test_ids_are_lowercase_hex_or_empty(engine: Engine, raw: bytes, text: str) -> None:
    got = engine.arrow(f"SELECT {hex_id('unhex({h:String})')} AS id", {"h": raw.hex()}).column("id").to_pylist()
    assert got == [text]


@pytest.mark.parametrize(("number", "kind", "status"), [(0, "Unspecified", "Unset"), (2, "Server", "Error"),
                                                         (5, "Consumer", "Unset"), (6, "Unspecified", "Unset"),
                                                         (-1, "Unspecified", "Unset"), (99, "Unspecified", "Unset")])
def test_enums_out_of_range_read_as_unspecified(engine: Engine, number: int, kind: str, status: str) -> None:
    row = engine.arrow(f"SELECT {span_kind('{n:Int32}')} AS k, {status_code('{n:Int32}')} AS s", {"n": number})
    assert row.to_pylist() == [{"k": kind, "s": status}]


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def S(v: str) -> AnyValue:
    return AnyValue(string_value=v)


def I(v: int) -> AnyValue:  # noqa: E743 - the letter reads as "int" next to S, D and B
    return AnyValue(int_value=v)


def D(v: float) -> AnyValue:
    return AnyValue(double_value=v)


def B(v: bool) -> AnyValue:
    return AnyValue(bool_value=v)


# (attributes, their text map, their typed values) for every kind of scalar; arrays and
# kvlists need the batch's Join table: test_complex_values_are_looked_up.
ATTRIBUTE_CASES = [
    pytest.param([_kv("s", S("v")), _kv("i", I(443)), _kv("d", D(0.25)), _kv("b", B(True))],
                 {"s": "v", "i": "443", "d": "0.25", "b": "true"}, {"s": "v", "i": 443, "d": 0.25, "b": True},
                 id="non-zero-scalars"),
    pytest.param([_kv("s", S("")), _kv("i", I(0)), _kv("d", D(0.0)), _kv("b", B(False)), _kv("e", AnyValue())],
                 {"s": "", "i": "0", "d": "0", "b": "false", "e": ""},
                 {"s": "", "i": 0, "d": 0.0, "b": False, "e": None},
                 id="zero-values-keep-their-kind"),
    pytest.param([_kv("y", AnyValue(bytes_value=b"\0\xff")), _kv("big", D(1e21)), _kv("neg", I(-7))],
                 {"y": "AP8=", "big": "1e+21", "neg": "-7"}, {"y": b"\0\xff", "big": 1e21, "neg": -7},
                 id="bytes-exponents-negatives"),
    pytest.param([_kv("k", S("first")), _kv("j", I(1)), _kv("k", I(2))], {"j": "1", "k": "2"}, {"k": 2, "j": 1},
                 id="repeated-key-keeps-its-last-value"),
    pytest.param([], {}, {}, id="none"),
]


@pytest.mark.parametrize(("kvs", "texts", "typed"), ATTRIBUTE_CASES)
def test_attributes_are_written_as_text_and_read_back_typed(engine: Engine, kvs: list[KeyValue],
                                                            texts: dict[str, str], typed: dict[str, object]) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(attributes=kvs)
    with StagedBatch(engine, "traces", write_schemas(engine)["traces"]) as staged:
        assert staged.parse([(0, request.SerializeToString())]).reasons == {}
        row = engine.arrow(f"SELECT {attribute_map('sp.attributes', None)} AS m, {typed_values('sp.attributes')} AS t "
                           f"FROM {staged.nested} ARRAY JOIN resource_spans AS rs ARRAY JOIN rs.scope_spans AS ss "
                           "ARRAY JOIN ss.spans AS sp").to_pylist()[0]
    assert list(row["m"]) == list(texts.items())  # one entry per key, the last value at its last place
    got_typed = typed_attributes(row["t"])
    assert got_typed == typed and [type(v) for v in got_typed.values()] == [type(v) for v in typed.values()]
    # The same forms the Python functions give one value at a time.
    assert texts == {kv.key: any_value_to_string(kv.value) for kv in kvs}
    assert typed == {kv.key: any_value_to_python(kv.value) for kv in kvs}


def test_complex_values_are_looked_up(engine: Engine) -> None:
    value = AnyValue(kvlist_value=KeyValueList(values=[_kv("k", AnyValue(array_value=ArrayValue()))]))
    raw = value.kvlist_value.SerializeToString()
    lookup, attrs = staging_name("complex"), staging_name("attrs")
    engine.run(f"CREATE TABLE {lookup} (Key String, Text String) ENGINE = Join(ANY, LEFT, Key)")
    engine.run(f"CREATE TABLE {attrs} (attrs {ATTRIBUTES}) ENGINE = Memory")
    try:
        engine.load_arrow(lookup, pa.table({"Key": ["k" + raw.hex().upper()], "Text": ['{"k":[]}']}))
        value_sql = "('', false, 0, 0, '', unhex({h:String}), '', 'kvlist_value')"
        engine.run(f"INSERT INTO {attrs} SELECT [('a', {value_sql})]", params={"h": raw.hex()})
        got = engine.arrow(f"SELECT {attribute_map('attrs', lookup)} AS m FROM {attrs}").column("m").to_pylist()[0]
    finally:
        engine.run(f"DROP TABLE {lookup}")
        engine.run(f"DROP TABLE {attrs}")
    assert got == [("a", '{"k":[]}')] and any_value_to_string(value) == '{"k":[]}'
