"""Where every accepted item went: each span, log record and data point on a raw topic is
either stored in ClickHouse or inside a dead letter (of its raw record, or of the enriched
record that carried it). Items the gateway refused never reach a raw topic."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from core.settings import TopicSettings
from pipeline.topics import describe_topics
from sinks.warehouse import Warehouse

Item = tuple[Any, ...]


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now."""
    count = (await describe_topics(bootstrap)).get(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        out: list[Any] = []
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            for tp, records in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                out += records
                if records and records[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
        return out
    finally:
        await consumer.stop()


def _hex(value: bytes) -> str:
    return value.hex() if value.lstrip(b"\0") else ""


def raw_items(signal: str, value: bytes) -> set[Item]:
    """The items of one raw record (an OTLP export request)."""
    out: set[Item] = set()
    if signal == "traces":
        traces = ExportTraceServiceRequest.FromString(value)
        for rs in traces.resource_spans:
            for ss in rs.scope_spans:
                out |= {("span", _hex(s.trace_id), _hex(s.span_id)) for s in ss.spans}
    elif signal == "logs":
        logs = ExportLogsServiceRequest.FromString(value)
        for rl in logs.resource_logs:
            for sl in rl.scope_logs:
                out |= {("log", _hex(r.trace_id), _hex(r.span_id), r.time_unix_nano or r.observed_time_unix_nano)
                        for r in sl.log_records}
    else:
        metrics = ExportMetricsServiceRequest.FromString(value)
        for rm in metrics.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind:
                        out |= {("point", metric.name, p.time_unix_nano)
                                for p in getattr(metric, kind).data_points}
    return out


def enriched_items(value: bytes) -> set[Item]:
    """The items of an enriched record, as far as its JSON can be read."""
    try:
        tables = orjson.loads(value)["tables"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return set()
    out: set[Item] = set()
    for name, rows in tables.items() if isinstance(tables, dict) else ():
        for row in rows if isinstance(rows, list) else ():
            if not isinstance(row, dict):
                continue
            if name == "otel_traces":
                out.add(("span", row.get("TraceId"), row.get("SpanId")))
            elif name == "otel_logs":
                out.add(("log", row.get("TraceId"), row.get("SpanId"), row.get("Timestamp")))
            elif name.startswith("otel_metrics_"):
                out.add(("point", row.get("MetricName"), row.get("TimeUnix")))
    return out


def stored_items(warehouse: Warehouse) -> set[Item]:
    db = warehouse.database
    out = {("span", r["TraceId"], r["SpanId"])
           for r in warehouse.query(f"SELECT DISTINCT TraceId, SpanId FROM {db}.otel_traces")}
    out |= {("log", r["TraceId"], r["SpanId"], int(r["ts"])) for r in warehouse.query(
        f"SELECT DISTINCT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp) AS ts FROM {db}.otel_logs")}
    for table in ("gauge", "sum", "histogram", "exp_histogram", "summary"):
        out |= {("point", r["MetricName"], int(r["ts"])) for r in warehouse.query(
            f"SELECT DISTINCT MetricName, toUnixTimestamp64Nano(TimeUnix) AS ts FROM {db}.otel_metrics_{table}")}
    return out


@dataclass
class Accounts:
    raw_records: int = 0
    raw_items: int = 0
    stored: int = 0
    dead_records: int = 0
    dead_items: int = 0
    missing: list[Item] = field(default_factory=list)


async def account(bootstrap: str, topics: TopicSettings, warehouse: Warehouse) -> Accounts:
    """Every item on the raw topics, found stored or dead-lettered (``missing`` lists the rest)."""
    raw: dict[tuple[str, int, int], set[Item]] = {}
    for signal, topic in (("traces", topics.spans), ("logs", topics.logs), ("metrics", topics.metrics)):
        for record in await read_topic(bootstrap, topic):
            raw[(topic, record.partition, record.offset)] = raw_items(signal, record.value)
    dead_sources: set[tuple[str, int, int]] = set()
    dead: set[Item] = set()
    for letter in await read_topic(bootstrap, topics.deadletter):
        headers = {k: v.decode() for k, v in letter.headers}
        source = (headers["ollystack.source.topic"], int(headers["ollystack.source.partition"]),
                  int(headers["ollystack.source.offset"]))
        dead_sources.add(source)
        dead |= enriched_items(letter.value or b"")
    stored = stored_items(warehouse)
    accounts = Accounts(raw_records=len(raw), raw_items=sum(len(items) for items in raw.values()))
    for source, items in raw.items():
        if source in dead_sources:
            accounts.dead_records += 1
            continue
        for item in items:
            if item in stored:
                accounts.stored += 1
            elif item in dead:
                accounts.dead_items += 1
            else:
                accounts.missing.append(item)
    return accounts


def first_keys_per_partition(partitions: int, candidates: Iterable[bytes]) -> dict[int, bytes]:
    """For each partition, a key from ``candidates`` the producers' murmur2 puts there."""
    from aiokafka.partitioner import murmur2

    found: dict[int, bytes] = {}
    for key in candidates:
        found.setdefault((murmur2(key) & 0x7FFFFFFF) % partitions, key)
        if len(found) == partitions:
            break
    return found
