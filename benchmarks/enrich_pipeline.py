"""Enrich-only spans/s (decode + correlation + semconv, one core) and end-to-end spans/s
(raw topic -> queryable rows in chDB) in one run, printed as JSON.

    python benchmarks/enrich_pipeline.py [--requests 200] [--spans 512]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaProducer  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,  # noqa: E402
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span  # noqa: E402

from agents.enrich.config import EnrichConfig  # noqa: E402
from agents.enrich.logic import enrich_spans  # noqa: E402
from core.settings import ClickHouseSettings, Settings  # noqa: E402
from pipeline.local_broker import LocalKafkaBroker  # noqa: E402
from pipeline.topics import ensure_topics, topic_specs  # noqa: E402
from pipeline.worker import build_worker  # noqa: E402
from schemas.rows import decode_spans  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.migrations import migrate  # noqa: E402


def request(spans: int, traces: int = 8) -> tuple[bytes, str]:
    trace_ids = [uuid.uuid4().bytes for _ in range(traces)]
    t0 = time.time_ns()
    attrs = [KeyValue(key=f"attr.{k}", value=AnyValue(string_value=f"value-{k}")) for k in range(8)]
    attrs += [KeyValue(key="http.method", value=AnyValue(string_value="GET")),
              KeyValue(key="http.status_code", value=AnyValue(int_value=200))]
    body = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="bench"))]),
        scope_spans=[ScopeSpans(spans=[Span(
            trace_id=trace_ids[i % traces], span_id=uuid.uuid4().bytes[:8], name=f"op-{i % 20}",
            start_time_unix_nano=t0 + i, end_time_unix_nano=t0 + i + 1_000_000, attributes=attrs)
            for i in range(spans)])])])
    return body.SerializeToString(), trace_ids[0].hex()


def enrich_only(bodies: list[bytes]) -> float:
    config = EnrichConfig().correlation
    started = time.perf_counter()
    total = 0
    for body in bodies:
        records = decode_spans(ExportTraceServiceRequest.FromString(body))
        total += len(enrich_spans(records, {}, config).tables["otel_traces"])
    return total / (time.perf_counter() - started)


async def end_to_end(bodies: list[bytes], keys: list[str], spans_total: int) -> dict[str, float]:
    """Worker running first; then time from the first raw record produced to the last row
    queryable (count() in otel_traces), so start-up and group join are not counted."""
    with tempfile.TemporaryDirectory() as tmp, LocalKafkaBroker(Path(tmp) / "kafka") as broker:
        settings = Settings.model_validate({"data_dir": tmp, "topics": {"partitions": 2}})
        await ensure_topics(broker.bootstrap, topic_specs(settings.topics))
        wh = open_warehouse(ClickHouseSettings(), Path(tmp))
        migrate(wh, settings.clickhouse)
        worker = build_worker(settings, broker.bootstrap, wh)
        started = time.perf_counter()
        await worker.start()
        startup_s = time.perf_counter() - started
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", max_request_size=8 << 20)
        await producer.start()
        try:
            started = time.perf_counter()
            for body, key in zip(bodies, keys, strict=True):
                await producer.send(settings.topics.spans, body, key=key.encode())
            await producer.flush()
            while wh.query("SELECT count() AS n FROM default.otel_traces")[0]["n"] < spans_total:  # noqa: ASYNC110 - polls rows the worker's sink writes
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            await producer.stop()
            await worker.stop()
        return {"spans_per_s": spans_total / elapsed, "worker_startup_s": startup_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--spans", type=int, default=512)
    args = parser.parse_args()
    made = [request(args.spans) for _ in range(args.requests)]
    bodies, keys = [b for b, _ in made], [k for _, k in made]
    only = enrich_only(bodies)
    e2e = asyncio.run(end_to_end(bodies, keys, args.requests * args.spans))
    print(json.dumps({"benchmark": "enrich_pipeline", "spans": args.requests * args.spans,
                      "spans_per_request": args.spans, "enrich_only_spans_per_s": round(only),
                      "end_to_end_spans_per_s": round(e2e["spans_per_s"]),
                      "end_to_end_to_enrich_ratio": round(e2e["spans_per_s"] / only, 3),
                      "worker_startup_s": round(e2e["worker_startup_s"], 2)}))


if __name__ == "__main__":
    main()
