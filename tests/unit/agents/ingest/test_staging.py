"""Raw records parsed by the engine: every record keeps its index, and a record that is not
OTLP is found and named without losing its neighbours."""
from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agents.ingest.staging import StagedBatch, write_schemas
from schemas.otlp_wire import RECORD_FIELD_NUMBER, proto_schema
from sinks.engine import Engine


def request(name: str) -> bytes:
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.add(name=name, trace_id=b"\1" * 16, span_id=b"\2" * 8)
    return req.SerializeToString()


def staged_names(engine: Engine, staged: StagedBatch) -> list[tuple[int, str]]:
    rows = engine.arrow(f"SELECT ollystack_record AS r, sp.name AS n FROM {staged.nested} "
                        "ARRAY JOIN resource_spans AS rs ARRAY JOIN rs.scope_spans AS ss ARRAY JOIN ss.spans AS sp "
                        "ORDER BY r")
    return [(row["r"], row["n"]) for row in rows.to_pylist()]


def test_the_schema_reads_array_and_kvlist_values_as_bytes_and_tags_records() -> None:
    text = proto_schema("traces")
    assert "bytes array_value = 5;" in text and "bytes kvlist_value = 6;" in text
    assert f"uint64 ollystack_record = {RECORD_FIELD_NUMBER};" in text


def test_records_keep_their_index_in_the_batch(engine: Engine) -> None:
    with StagedBatch(engine, "traces", write_schemas(engine)["traces"]) as staged:
        assert staged.parse([(3, request("a")), (7, request("b"))]).reasons == {}
        assert staged_names(engine, staged) == [(3, "a"), (7, "b")]


def test_a_record_that_is_not_otlp_is_named_and_its_neighbours_are_parsed(engine: Engine) -> None:
    damaged = request("bad")[:-3]
    with StagedBatch(engine, "traces", write_schemas(engine)["traces"]) as staged:
        unreadable = staged.parse([(0, request("a")), (1, damaged), (2, b"\xff\xff\xff"), (3, request("b"))])
        assert set(unreadable.reasons) == {1, 2}
        assert all("ExportTraceServiceRequest" in reason for reason in unreadable.reasons.values())
        assert staged_names(engine, staged) == [(0, "a"), (3, "b")]


def test_staging_tables_are_dropped_with_the_batch(engine: Engine) -> None:
    with StagedBatch(engine, "traces", write_schemas(engine)["traces"]) as staged:
        staged.parse([(0, request("a"))])
        flat = staged.create("flat", "x UInt8")
    left = engine.arrow("SELECT name FROM system.tables WHERE database = 'ollystack_stage'").column("name").to_pylist()
    assert staged.nested.split(".")[1] not in left and flat.split(".")[1] not in left
