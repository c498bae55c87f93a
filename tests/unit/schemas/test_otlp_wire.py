"""The varint both the gateway's record assembly and the engine's batch framing write."""
from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from schemas.otlp_wire import frame, varint


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16_383, 16_384, 2**21 - 1, 2**21, 2**32, 2**63 - 1])
def test_varint_is_protobufs_encoding(n: int) -> None:
    # protobuf's own encoding: AnyValue.int_value is field 3, wire type 0 (tag 0x18).
    assert b"\x18" + varint(n) == AnyValue(int_value=n).SerializeToString()


def test_a_frame_is_each_record_length_delimited_with_its_index() -> None:
    framed = frame([(3, b"abc")])
    tagged = varint(((1 << 29) - 1) << 3) + varint(3)
    assert framed == varint(len(tagged) + 3) + tagged + b"abc"
