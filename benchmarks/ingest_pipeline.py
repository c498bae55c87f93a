"""The worker end to end on a real Kafka broker and chDB: items/s from raw topic to queryable rows,
CPU and peak RSS per scenario, ingest-to-queryable latency at half the target rate, the gateway's
accepted rate and the chDB insert ceiling measured in the same run; prints one JSON object.

Usage: ``python benchmarks/ingest_pipeline.py [--quick] [--no-score] [--traces-per-record 1]
[--latency-rate-spans 25000 10000] [--latency-seconds 20] [--backlog-minutes 0]
[--scenarios traces-512 ...] [--throughput-only]``

Records are shaped as OllyStack's gateway writes them. The gateway splits every export
request by trace ID, so one raw span record holds the spans of ONE trace, keyed by its hex
trace ID (``--traces-per-record 8`` measures the old shape: one record of 8 traces). Spans are
HTTP server spans (the trace's root) and client spans with about ten attributes under their
deprecated names (``http.method``, ``http.status_code``, ``http.target``, ``net.peer.name``...), so
the semconv renames run; log records likewise hold the logs of one trace; a metric record is one
ResourceMetrics (gauge, sum and histogram points), keyed by its resource as the gateway keys it.

Each throughput scenario also prints the worker's seconds per stage per 100k items, read from its
own histograms (decode, insert, publish, score fold, rollup refresh): the profile by stage.

The worker runs in this process (its CPU is ``getrusage(RUSAGE_SELF)``, its RSS a thread reading
VmRSS every 100 ms); the load generator builds its records and produces them (aiokafka, acks=all,
idempotent, zstd, like the gateway) from a spawned child, so its CPU is not counted. Every
scenario has its own topics, consumer group and database on the one chDB folder of this process.
One file on purpose: ``make bench`` runs every script in this folder, so a helper module here would
run as a benchmark of its own.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Runnable as a script from anywhere: the repository root goes on the import path.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

GOAL_SPANS_PER_S = {"traces-512": 50_000, "traces-8": 20_000}
GOAL_LATENCY_P99_S = 2.0
COUNT_POLL_S = 0.2  # the count poller shares the engine with the worker: not faster
LATENCY_POLL_S = 0.1
RSS_SAMPLE_S = 0.1
CEILING_ROWS = 50_000
MIB = 1024 * 1024
SERVICES = ("checkout", "cart", "inventory", "payment", "shipping", "catalog")
DOWNSTREAM = (("inventory", "/api/stock/{id}"), ("payment", "/api/charges/{id}"), ("catalog", "/api/items/{id}"),
              ("shipping", "/api/quotes/{id}"))
HISTOGRAM_BOUNDS = (5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 10000.0)


@dataclass(frozen=True)
class Scenario:
    name: str
    signal: str  # traces, logs or metrics
    per_record: int  # spans, log records or points in one raw record
    unit: str


SCENARIOS = (Scenario("traces-512", "traces", 512, "spans"), Scenario("traces-8", "traces", 8, "spans"),
             Scenario("logs-128", "logs", 128, "logs"), Scenario("metrics-100", "metrics", 100, "points"))
COUNT_TABLES = {"traces": ("otel_traces",), "logs": ("otel_logs",),
                "metrics": ("otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram")}


# --- records, built in the load generator (and for the insert ceiling) ---------------------------

@functools.lru_cache(maxsize=4096)  # most attributes repeat: building them dominated the build
def _kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, bool | int):
        return KeyValue(key=key, value=AnyValue(int_value=int(value)))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource(rnd: random.Random, service: str, host: str) -> list[KeyValue]:
    return [_kv(k, v) for k, v in {
        "service.name": service, "service.version": "2.14.1", "service.namespace": "shop",
        "deployment.environment": "prod", "host.name": host, "host.arch": "amd64",
        "process.pid": rnd.randrange(1, 65536),
        "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "python", "telemetry.sdk.version": "1.27.0",
        "k8s.pod.name": f"{service}-7d9f8b6c4-{host[-5:]}"}.items()]


def span_record(rnd: random.Random, spans: int, traces: int, service: str = "", name: str = "") -> tuple[bytes, bytes]:
    """(key, value) of one raw record: ``traces`` traces of ``spans`` spans in all, each trace an
    HTTP server span with client spans under it; ``name`` (if given) names every span."""
    service = service or rnd.choice(SERVICES)
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(_resource(rnd, service, f"ip-10-0-{rnd.randrange(256)}-{rnd.randrange(256)}"))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.flask", "0.48b0"
    now = time.time_ns()
    first_trace = b""
    for t in range(traces):
        trace_id, root_id = rnd.randbytes(16), rnd.randbytes(8)
        first_trace = first_trace or trace_id
        count = spans // traces + (1 if t < spans % traces else 0)
        start = now - 50_000_000 - rnd.randrange(10_000_000)
        order = rnd.randrange(10**6)
        status = 503 if rnd.random() < 0.02 else 200
        root = ss.spans.add(trace_id=trace_id, span_id=root_id, name=name or "GET /api/orders/{id}", kind=2,
                            start_time_unix_nano=start, end_time_unix_nano=start + 40_000_000 + count * 20_000)
        root.attributes.extend(_kv(k, v) for k, v in {
            "http.method": "GET", "http.status_code": status, "http.target": f"/api/orders/{order}?expand=items",
            "http.route": "/api/orders/{id}", "http.scheme": "https", "http.flavor": "1.1",
            "http.user_agent": "Mozilla/5.0 (X11; Linux x86_64) shop-web/3.2", "net.host.name": service,
            "net.host.port": 8080, "http.client_ip": f"10.1.{rnd.randrange(256)}.{rnd.randrange(256)}"}.items())
        if rnd.random() < 0.5:  # half the requests come with an ID of their caller's
            root.attributes.append(_kv("correlation_id", str(uuid.UUID(bytes=rnd.randbytes(16)))))
        if status >= 500:
            root.status.code = 2
        for i in range(1, count):
            peer, route = DOWNSTREAM[i % len(DOWNSTREAM)]
            child_start = start + 1_000_000 + i * 20_000
            child = ss.spans.add(trace_id=trace_id, span_id=rnd.randbytes(8), parent_span_id=root_id,
                                 name=name or f"GET {route}", kind=3, start_time_unix_nano=child_start,
                                 end_time_unix_nano=child_start + rnd.randrange(100_000, 5_000_000))
            child.attributes.extend(_kv(k, v) for k, v in {
                "http.method": "GET", "http.status_code": 200,
                "http.url": f"http://{peer}:8080{route.replace('{id}', str(order + i))}", "net.peer.name": peer,
                "net.peer.port": 8080, "http.flavor": "1.1", "http.request_content_length": 0,
                "http.response_content_length": rnd.randrange(200, 20_000), "thread.id": 140,
                "thread.name": "asyncio_0"}.items())
    return first_trace.hex().encode(), request.SerializeToString()


def log_record(rnd: random.Random, logs: int) -> tuple[bytes, bytes]:
    """(key, value): ``logs`` log records of one trace under one resource."""
    service = rnd.choice(SERVICES)
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(_resource(rnd, service, f"ip-10-0-{rnd.randrange(256)}-{rnd.randrange(256)}"))
    sl = rl.scope_logs.add()
    sl.scope.name = f"shop.{service}"
    trace_id, spans = rnd.randbytes(16), [rnd.randbytes(8) for _ in range(8)]
    now, order = time.time_ns(), rnd.randrange(10**6)
    for i in range(logs):
        severity, text = rnd.choice(((9, "INFO"), (9, "INFO"), (9, "INFO"), (13, "WARNING"), (17, "ERROR")))
        record = sl.log_records.add(time_unix_nano=now + i * 1000, observed_time_unix_nano=now + i * 1000 + 500,
                                    severity_number=severity, severity_text=text, trace_id=trace_id,
                                    span_id=spans[i % 8], flags=1)
        record.body.string_value = (f"order {order} step {i}: reserved {rnd.randrange(1, 9)} items "
                                    f"in {rnd.randrange(1, 90)} ms for customer {rnd.randrange(10**5)}")
        record.attributes.extend(_kv(k, v) for k, v in {
            "code.function": "reserve_items", "code.lineno": 100 + i % 50, "code.filepath": f"/app/{service}/orders.py",
            "thread.name": "worker-3", "log.logger": f"{service}.orders", "http.method": "POST"}.items())
    return trace_id.hex().encode(), request.SerializeToString()


def metric_record(rnd: random.Random, points: int, index: int) -> tuple[bytes, bytes]:
    """(key, value): one ResourceMetrics of ``points`` points, 30 % gauge, 40 % sum, 30 % histogram."""
    from pipeline.gateway.logic import resource_key

    service = rnd.choice(SERVICES)
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(_resource(rnd, service, f"host-{index:07d}"))
    sm = rm.scope_metrics.add()
    sm.scope.name = "opentelemetry.instrumentation.system_metrics"
    now = time.time_ns()
    gauges, sums = points * 3 // 10, points * 4 // 10
    gauge = sm.metrics.add(name="system.cpu.utilization", unit="1").gauge
    for i in range(gauges):
        gauge.data_points.add(time_unix_nano=now, as_double=rnd.random(),
                              attributes=[_kv("cpu", str(i)), _kv("state", "user")])
    total = sm.metrics.add(name="http.server.request.count", unit="{request}").sum
    total.aggregation_temporality, total.is_monotonic = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE, True
    for i in range(sums):
        total.data_points.add(start_time_unix_nano=now - 60 * 10**9, time_unix_nano=now, as_int=rnd.randrange(10**6),
                              attributes=[_kv("http.method", "GET"), _kv("http.route", f"/api/r{i}/{{id}}"),
                                          _kv("http.status_code", 200)])
    histogram = sm.metrics.add(name="http.server.duration", unit="ms").histogram
    histogram.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    for i in range(points - gauges - sums):
        buckets = [rnd.randrange(100) for _ in range(len(HISTOGRAM_BOUNDS) + 1)]
        histogram.data_points.add(start_time_unix_nano=now - 60 * 10**9, time_unix_nano=now, count=sum(buckets),
                                  sum=sum(buckets) * 42.0, min=1.0, max=9000.0, bucket_counts=buckets,
                                  explicit_bounds=HISTOGRAM_BOUNDS,
                                  attributes=[_kv("http.method", "POST"), _kv("http.route", f"/api/h{i}")])
    return resource_key(rm.resource), request.SerializeToString()


def records_of(spec: dict[str, Any], rnd: random.Random) -> Iterator[tuple[bytes, bytes, int | None]]:
    """The spec's records as (key, value, partition): the partition is explicit (round robin)
    only when latency is measured, and then ServiceName and SpanName carry it and the sequence."""
    signal, per, parts = spec["signal"], spec["per_record"], spec["partitions"]
    for i in range(spec["records"]):
        if signal == "traces" and spec["mode"] == "paced":
            partition = i % parts
            key, value = span_record(rnd, per, spec["traces_per_record"], f"lat-p{partition}", f"seq-{i // parts}")
            yield key, value, partition
        elif signal == "traces":
            yield (*span_record(rnd, per, spec["traces_per_record"]), None)
        elif signal == "logs":
            yield (*log_record(rnd, per), None)
        else:
            yield (*metric_record(rnd, per, spec["seed"] * 10**6 + i), None)


# --- the load generator: a spawned child --------------------------------------------------------

def generate(spec: dict[str, Any], conn: Any) -> None:
    """Child process: build the records, report "ready", wait for "go", produce, report the times."""
    try:
        asyncio.run(_produce(spec, conn))
    except BaseException:
        conn.send({"error": traceback.format_exc()})
        raise


async def _produce(spec: dict[str, Any], conn: Any) -> None:
    from aiokafka import AIOKafkaProducer

    rnd = random.Random(spec["seed"])
    records = list(records_of(spec, rnd)) if spec["mode"] != "stream" else []
    producer = AIOKafkaProducer(bootstrap_servers=spec["bootstrap"], acks="all", enable_idempotence=True,
                                compression_type="zstd", max_request_size=8 * MIB, max_batch_size=512 * 1024)
    await producer.start()
    try:
        await producer.partitions_for(spec["topic"])
        conn.send({"ready": len(records)})
        if conn.recv() != "go":
            return
        if spec["mode"] == "paced":
            result = await _paced(producer, spec["topic"], records, spec["records_per_s"])
        else:
            result = await _burst(producer, spec["topic"], records or records_of(spec, rnd))
        conn.send(result | {"cpu_s": time.process_time()})
    finally:
        await producer.stop()


async def _burst(producer: Any, topic: str, records: Any) -> dict[str, Any]:
    futures = []
    first = time.monotonic()
    for key, value, partition in records:
        futures.append(await producer.send(topic, value, key=key, partition=partition))
    last_send = time.monotonic()
    await asyncio.gather(*futures)
    return {"records": len(futures), "first_send": first, "last_send": last_send, "last_ack": time.monotonic()}


async def _paced(producer: Any, topic: str, records: list[Any], records_per_s: float) -> dict[str, Any]:
    acks = [math.nan] * len(records)

    def acked(index: int, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is None:
            acks[index] = time.monotonic()

    futures = []
    first = time.monotonic()
    for index, (key, value, partition) in enumerate(records):
        delay = first + index / records_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        fut = await producer.send(topic, value, key=key, partition=partition)
        fut.add_done_callback(functools.partial(acked, index))
        futures.append(fut)
    last_send = time.monotonic()
    await asyncio.gather(*futures)
    return {"records": len(records), "first_send": first, "last_send": last_send, "last_ack": time.monotonic(),
            "acks": acks}


class LoadGenerator:
    """The child process, stopped on exit whatever happened."""

    def __init__(self, spec: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=generate, args=(spec, child), daemon=True)
        self._told = False

    def __enter__(self) -> LoadGenerator:
        self._proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._told:  # still waiting for "go": tell it to finish
            with contextlib.suppress(OSError):
                self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()

    def go(self) -> None:
        self._conn.send("go")
        self._told = True

    async def receive(self, timeout_s: float) -> dict[str, Any]:
        """The child's next report; RuntimeError when it failed or died, TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while not self._conn.poll():
            if not self._proc.is_alive() and not self._conn.poll():
                raise RuntimeError(f"the load generator exited with {self._proc.exitcode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no word from the load generator within {timeout_s:.0f}s")
            await asyncio.sleep(0.05)
        try:
            message: dict[str, Any] = self._conn.recv()
        except EOFError:
            self._proc.join(5)
            raise RuntimeError(f"the load generator exited with {self._proc.exitcode}") from None
        if "error" in message:
            raise RuntimeError(f"the load generator failed:\n{message['error']}")
        return message


# --- what the worker costs: CPU, RSS, logs ------------------------------------------------------

def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_by_thread() -> collections.Counter[str]:
    """CPU-seconds of this process's live threads by kernel thread name: the engine names its
    threads (QueryPipelineEx, MergeMutate...), Python's own threads keep the process name. An
    engine query also runs partly on the thread that called it, so read the split as a
    lower bound of the engine's share."""
    tick = os.sysconf("SC_CLK_TCK")
    out: collections.Counter[str] = collections.Counter()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            out[(task / "comm").read_text().strip()] += (int(fields[11]) + int(fields[12])) / tick
    return out


def thread_share(before: collections.Counter[str], after: collections.Counter[str], seconds: float,
                 top: int = 8) -> dict[str, float]:
    """CPU share (1.0 = one core) of each thread name between two ``cpu_by_thread`` reads."""
    delta = {name: after[name] - before.get(name, 0.0) for name in after}
    ranked = sorted(delta.items(), key=lambda kv: -kv[1])[:top]
    return {name: round(used / seconds, 2) for name, used in ranked if used > 0}


class RssSampler(threading.Thread):
    """VmRSS of this process every RSS_SAMPLE_S, as (monotonic time, bytes)."""

    def __init__(self) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.monotonic(), rss_bytes()))
            self._stop_event.wait(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak_mib(self, start: float, end: float) -> float:
        inside = [rss for t, rss in self.samples if start <= t <= end] or [rss_bytes()]
        return round(max(inside) / MIB, 1)

    def every(self, start: float, end: float, step_s: float) -> list[float]:
        picked: list[float] = []
        due = start
        for t, rss in self.samples:
            if start <= t <= end and t >= due:
                picked.append(round(rss / MIB, 1))
                due = t + step_s
        return picked


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class LogTail(logging.Handler):
    """The last records logged, for a report of what the worker said before it misbehaved."""

    def __init__(self, size: int = 40) -> None:
        super().__init__(logging.INFO)
        self.records: collections.deque[logging.LogRecord] = collections.deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [self.format(r) for r in self.records]


def _sums(worker: Any, wanted: Any) -> dict[str, float]:
    """The worker's samples whose name ``wanted`` accepts, summed over labels."""
    totals: dict[str, float] = {}
    for metric in worker.metrics.registry.collect():
        for sample in metric.samples:
            if wanted(sample.name):
                totals[sample.name] = totals.get(sample.name, 0) + sample.value
    return totals


def worker_counters(worker: Any) -> dict[str, float]:
    """The worker's counters (summed over labels), e.g. semconv renames and dead letters."""
    return _sums(worker, lambda name: name.endswith("_total"))


_STAGES = {"ollystack_ingest_decode_seconds_sum": "decode", "ollystack_sink_insert_seconds_sum": "insert",
           "ollystack_ingest_publish_seconds_sum": "publish", "ollystack_score_fold_seconds_sum": "score_fold",
           "ollystack_rollup_refresh_seconds_sum": "rollup_refresh"}


async def stage_seconds(worker: Any, deadline_s: float = 10.0) -> dict[str, float]:
    """Seconds the worker spent per stage, from its own histograms (summed over labels):
    decoding batches (the engine's decoding session and Python), inserting (the warehouse's
    session), publishing to the enriched topic, folding records into score windows and
    refreshing rollups. Stages overlap in time: decoding runs while the batch before inserts.

    Rows are queryable before their batch is published, so this first waits (a while) for
    every decoded batch to be published too."""
    counts = ("ollystack_ingest_decode_seconds_count", "ollystack_ingest_publish_seconds_count")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        done = _sums(worker, counts.__contains__)
        if done.get(counts[0], 0) == done.get(counts[1], 0):
            break
        await asyncio.sleep(0.05)
    found = _sums(worker, _STAGES.__contains__)
    return {stage: found.get(name, 0.0) for name, stage in _STAGES.items()}


# --- one scenario's topics, database and worker -------------------------------------------------

@dataclass
class Bench:
    args: argparse.Namespace
    bootstrap: str
    data_dir: Path
    run_id: str
    rss: RssSampler
    logs: LogTail

    async def prepare(self, slug: str) -> tuple[Any, Any]:
        """Settings and a migrated warehouse of a database and topics of ``slug``'s own."""
        from core.settings import ClickHouseSettings, Settings
        from pipeline.topics import ensure_topics, topic_specs
        from sinks.backend import open_warehouse
        from sinks.migrations import migrate

        database = f"bench_{self.run_id}_{slug.replace('-', '_')}"
        ch = ClickHouseSettings(database=database)
        warehouse = open_warehouse(ch, self.data_dir)
        migrate(warehouse, ch)
        names = ("spans", "logs", "metrics", "enriched_spans", "enriched_logs", "enriched_metrics", "alerts",
                 "deadletter")
        settings = Settings.model_validate({
            "data_dir": str(self.data_dir), "clickhouse": {"database": database},
            "topics": {n: f"bench-{self.run_id}-{slug}-{n}" for n in names} | {"partitions": self.args.partitions},
            "score": {"enabled": self.args.score}})
        await ensure_topics(self.bootstrap, topic_specs(settings.topics))
        return settings, warehouse

    def spec(self, settings: Any, scenario: Scenario, records: int, mode: str, **extra: Any) -> dict[str, Any]:
        topic = getattr(settings.topics, "spans" if scenario.signal == "traces" else scenario.signal)
        return {"bootstrap": self.bootstrap, "topic": topic, "signal": scenario.signal,
                "per_record": scenario.per_record, "records": records, "mode": mode,
                "traces_per_record": self.args.traces_per_record, "partitions": settings.topics.partitions,
                "seed": random.randrange(1, 10**6), **extra}

    @contextlib.asynccontextmanager
    async def worker(self, settings: Any, warehouse: Any, slug: str) -> AsyncIterator[Any]:
        """A started worker (its group joined), stopped on exit."""
        from pipeline.worker import build_worker

        worker = build_worker(settings, self.bootstrap, warehouse, app_id=f"bench-{self.run_id}-{slug}")
        try:
            await worker.start()
            yield worker
        finally:
            await worker.stop()

    async def wait_for_count(self, warehouse: Any, signal: str, total: int,
                             deadline_s: float) -> tuple[float | None, float, int]:
        """(time the count reached ``total`` or None, start time of the poll before, last count)."""
        db = warehouse.database
        sql = "SELECT " + " + ".join(f"(SELECT count() FROM {db}.{t})" for t in COUNT_TABLES[signal]) + " AS n"
        end = time.monotonic() + deadline_s
        previous = count = 0
        before = time.monotonic()
        while time.monotonic() < end:
            started = time.monotonic()
            count = int((await asyncio.to_thread(warehouse.query, sql))[0]["n"])
            if count >= total:
                return time.monotonic(), before, count
            before = started
            if count != previous:
                previous, end = count, max(end, time.monotonic() + 60)  # progress: give it time
            await asyncio.sleep(COUNT_POLL_S)
        return None, before, count

    def failure(self, what: str, **seen: Any) -> dict[str, Any]:
        return {"error": what, **seen, "log_tail": self.logs.lines()[-25:]}


def drop(warehouse: Any) -> None:
    """Drop a scenario's database, so its background merges do not run into the next scenario."""
    with contextlib.suppress(Exception):
        warehouse.execute(f"DROP DATABASE IF EXISTS {warehouse.database} SYNC")


# --- the measurements ---------------------------------------------------------------------------

async def throughput(bench: Bench, scenario: Scenario, items: int) -> dict[str, Any]:
    """Items/s from the child's first send to the moment every row is queryable."""
    records = math.ceil(items / scenario.per_record)
    total = records * scenario.per_record
    settings, warehouse = await bench.prepare(scenario.name)
    out: dict[str, Any] = {"scenario": scenario.name, "signal": scenario.signal,
                           "items_per_record": scenario.per_record, "records": records, "items": total}
    try:
        with LoadGenerator(bench.spec(settings, scenario, records, "burst")) as gen:
            started = time.monotonic()
            async with bench.worker(settings, warehouse, scenario.name) as worker:
                out["worker_startup_s"] = round(time.monotonic() - started, 2)
                await gen.receive(600)
                rss_start, cpu_start, t_go = rss_bytes(), cpu_s(), time.monotonic()
                threads_start = cpu_by_thread()
                gen.go()
                done, before, count = await bench.wait_for_count(warehouse, scenario.signal, total,
                                                                 60 + total / 1000)
                cpu_used, t_end = cpu_s() - cpu_start, time.monotonic()
                threads = thread_share(threads_start, cpu_by_thread(), t_end - t_go)
                if done is None:
                    return out | bench.failure(f"the count stopped at {count} of {total}", last_count=count,
                                               counters=worker_counters(worker))
                sent = await gen.receive(60)
                counters = worker_counters(worker)
                stages = await stage_seconds(worker)
    finally:
        drop(warehouse)
    elapsed = done - sent["first_send"]
    return out | {
        f"{scenario.unit}_per_s": round(total / elapsed),
        # Rows were queryable at some moment after the poll before the last one started.
        f"{scenario.unit}_per_s_at_most": round(total / max(before - sent["first_send"], 1e-3)),
        "seconds": round(elapsed, 2), "producer_seconds": round(sent["last_ack"] - sent["first_send"], 2),
        "worker_cpu_s_per_100k": round(cpu_used / total * 100_000, 3),
        "worker_cpu_share": round(cpu_used / (t_end - t_go), 2),
        "worker_cpu_share_by_thread": threads,
        "worker_rss_mib": {"start": round(rss_start / MIB, 1), "peak": bench.rss.peak_mib(t_go, t_end)},
        "worker_stage_seconds_per_100k": {name: round(value / total * 100_000, 3) for name, value in stages.items()},
        "worker_counters": counters,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def latency(bench: Bench, scenario: Scenario, rate_spans: float, seconds: float) -> dict[str, Any]:
    """Ack-to-queryable latency of records produced at ``rate_spans`` spans/s, over every partition."""
    records_per_s = rate_spans / scenario.per_record
    records = max(1, round(records_per_s * seconds))
    settings, warehouse = await bench.prepare(f"lat-{scenario.name}")
    parts = settings.topics.partitions
    out: dict[str, Any] = {"scenario": scenario.name, "target_spans_per_s": rate_spans, "records": records,
                           "spans": records * scenario.per_record}
    sql = (f"SELECT ServiceName, max(toUInt64OrZero(substring(SpanName, 5))) AS seq "
           f"FROM {warehouse.database}.otel_traces GROUP BY ServiceName")
    last_seq = {p: (records - 1 - p) // parts for p in range(min(parts, records))}
    seen: dict[tuple[int, int], float] = {}
    high = dict.fromkeys(last_seq, -1)
    poll_s: list[float] = []
    try:
        spec = bench.spec(settings, scenario, records, "paced", records_per_s=records_per_s)
        with LoadGenerator(spec) as gen:
            async with bench.worker(settings, warehouse, f"lat-{scenario.name}") as worker:
                await gen.receive(600)
                cpu_start, t_go = cpu_s(), time.monotonic()
                gen.go()
                end = t_go + seconds + 120
                while any(high[p] < last_seq[p] for p in last_seq) and time.monotonic() < end:
                    started = time.monotonic()
                    rows = await asyncio.to_thread(warehouse.query, sql)
                    now = time.monotonic()
                    poll_s.append(now - started)
                    for row in rows:
                        p = int(row["ServiceName"].removeprefix("lat-p"))
                        for seq in range(high[p] + 1, int(row["seq"]) + 1):
                            seen[(p, seq)] = now
                        high[p] = max(high[p], int(row["seq"]))
                    await asyncio.sleep(max(0.0, LATENCY_POLL_S - (time.monotonic() - started)))
                cpu_used, t_end = cpu_s() - cpu_start, time.monotonic()
                sent = await gen.receive(120)
                counters = worker_counters(worker)
    finally:
        drop(warehouse)
    lat = [seen[(i % parts, i // parts)] - ack for i, ack in enumerate(sent["acks"])
           if (i % parts, i // parts) in seen and not math.isnan(ack)]
    missing = records - len(lat)
    if not lat:
        return out | bench.failure("no record became queryable", counters=counters)
    return out | {
        "achieved_spans_per_s": round(records * scenario.per_record / (sent["last_send"] - sent["first_send"]
                                                                       + 1 / records_per_s)),
        "latency_s": {"p50": round(_percentile(lat, 0.5), 3), "p99": round(_percentile(lat, 0.99), 3),
                      "max": round(max(lat), 3), "min": round(min(lat), 3)},
        "records_never_seen": missing,
        "poll_s": {"interval": LATENCY_POLL_S, "mean": round(sum(poll_s) / len(poll_s), 4),
                   "max": round(max(poll_s), 4)},
        "worker_cpu_share": round(cpu_used / (t_end - t_go), 2),
        "worker_rss_peak_mib": bench.rss.peak_mib(t_go, t_end),
        "worker_counters": counters,
        "note": ("latency = first poll (taken when the poll returned) that saw the record's seq in its partition "
                 "- the producer's ack time (CLOCK_MONOTONIC, shared across processes); polls every "
                 f"{LATENCY_POLL_S}s, so each value may be up to that (plus the poll's own time) late"),
    }


async def insert_ceiling(bench: Bench, inserts: int) -> dict[str, Any]:
    """Spans/s of bare inserts of the ingest stage's own span rows into otel_traces."""
    from agents.cardinality import CardinalityLimiter
    from agents.ingest.agent import build_plans
    from agents.ingest.batch import Ingestor
    from agents.ingest.batching import RECORD
    from agents.ingest.config import IngestConfig
    from agents.ingest.state import TraceStates

    settings, warehouse = await bench.prepare("ceiling")
    try:
        config = IngestConfig.from_settings(settings)
        e = config.enrich
        limiter = CardinalityLimiter(e.cardinality_max_values, e.cardinality_window_s, e.cardinality_max_keys)
        ingestor = Ingestor(warehouse.engine, config, TraceStates(warehouse, e.trace_cache_traces),
                            build_plans(config, limiter))
        rnd = random.Random(7)
        values = [span_record(rnd, 512, bench.args.traces_per_record)[1] for _ in range(math.ceil(CEILING_ROWS / 512))]
        rows = (await ingestor.ingest("traces", values)).tables["otel_traces"].drop_columns([RECORD])
        warehouse.insert_arrow("otel_traces", rows, dedup_token=f"bench-{bench.run_id}-warmup")
        cpu_start, started = cpu_s(), time.monotonic()
        for i in range(inserts):
            warehouse.insert_arrow("otel_traces", rows, dedup_token=f"bench-{bench.run_id}-{i}")
        elapsed, cpu_used = time.monotonic() - started, cpu_s() - cpu_start
    finally:
        drop(warehouse)
    spans = rows.num_rows * inserts
    return {"spans_per_s": round(spans / elapsed), "rows_per_insert": rows.num_rows, "inserts": inserts,
            "cpu_s_per_100k": round(cpu_used / spans * 100_000, 3)}


async def backlog(bench: Bench, minutes: float, rate_spans: float) -> dict[str, Any]:
    """Produce ``minutes`` of 512-span traffic with no worker running, then start one and drain it."""
    scenario = SCENARIOS[0]
    records = max(1, round(minutes * 60 * rate_spans / scenario.per_record))
    total = records * scenario.per_record
    settings, warehouse = await bench.prepare("backlog")
    out: dict[str, Any] = {"minutes": minutes, "rate_spans_per_s": rate_spans, "spans": total}
    try:
        with LoadGenerator(bench.spec(settings, scenario, records, "stream")) as gen:
            await gen.receive(600)
            gen.go()
            await gen.receive(600 + total / 2000)
        started = time.monotonic()
        async with bench.worker(settings, warehouse, "backlog") as worker:
            joined = time.monotonic()
            done, _, count = await bench.wait_for_count(warehouse, "traces", total, 120 + total / 5000)
            t_end = time.monotonic()
            counters = worker_counters(worker)
    finally:
        drop(warehouse)
    peak = bench.rss.peak_mib(started, t_end)
    out |= {"rss_cap_mib": bench.args.rss_cap_mib, "peak_rss_mib": peak, "rss_pass": peak <= bench.args.rss_cap_mib,
            "rss_every_5s_mib": bench.rss.every(started, t_end, 5.0), "worker_counters": counters}
    if done is None:
        return out | bench.failure(f"the count stopped at {count} of {total}", last_count=count)
    return out | {"drain_spans_per_s": round(total / (done - started)),
                  "drain_spans_per_s_after_join": round(total / (done - joined)),
                  "worker_startup_s": round(joined - started, 2)}


def gateway_rate(bootstrap: str, quick: bool) -> dict[str, Any]:
    """benchmarks/gateway_throughput.py against the same broker: its gRPC accepted spans/s."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gateway_throughput.py"), "--bootstrap", bootstrap,
           "--requests", "40" if quick else "120", "--spans", "512", "--concurrency", "8"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if done.returncode != 0:
        return {"error": f"gateway_throughput.py exited with {done.returncode}",
                "stderr_tail": done.stderr.strip().splitlines()[-15:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"grpc_spans_per_s": result["spans_per_s"]["grpc"], "run": result, "command": " ".join(cmd[1:])}


# --- the run ------------------------------------------------------------------------------------

def _ratio(value: Any, peer: Any) -> float | None:
    return round(value / peer, 3) if isinstance(value, int | float) and isinstance(peer, int | float) and peer else None


def goals(scenarios: list[dict[str, Any]], latencies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = {s["scenario"]: s.get("spans_per_s") for s in scenarios}
    out = [{"goal": f"{name} >= {goal} spans/s", "measured": found.get(name),
            "pass": isinstance(found.get(name), int) and found[name] >= goal}
           for name, goal in GOAL_SPANS_PER_S.items()]
    for lat in latencies:
        p99 = lat.get("latency_s", {}).get("p99")
        out.append({"goal": f"{lat['scenario']} latency p99 <= {GOAL_LATENCY_P99_S} s at "
                            f"{lat['target_spans_per_s']:g} spans/s", "measured": p99,
                    "pass": p99 is not None and p99 <= GOAL_LATENCY_P99_S and not lat.get("records_never_seen")})
    return out


async def _guarded(bench: Bench, what: str, measurement: Any) -> dict[str, Any]:
    """A measurement's result, or what went wrong with it (the run goes on with the next)."""
    try:
        result: dict[str, Any] = await measurement
    except Exception as exc:  # noqa: BLE001 - reported in the JSON; the other measurements still run
        return {"measurement": what} | bench.failure(f"{type(exc).__name__}: {exc}")
    return result


async def run(args: argparse.Namespace, bootstrap: str, data_dir: Path, gateway: dict[str, Any]) -> dict[str, Any]:
    scale = 5 if args.quick else 1
    logs = LogTail()
    logging.getLogger().addHandler(logs)
    rss = RssSampler()
    rss.start()
    bench = Bench(args, bootstrap, data_dir, uuid.uuid4().hex[:8], rss, logs)
    try:
        ceiling: dict[str, Any] = {}
        if not args.throughput_only:
            ceiling = await _guarded(bench, "insert ceiling", insert_ceiling(bench, 3 if args.quick else 6))
        sizes = {"traces": args.spans // scale, "logs": args.logs // scale, "metrics": args.points // scale}
        scenarios = [await _guarded(bench, s.name, throughput(bench, s, sizes[s.signal])) for s in SCENARIOS
                     if s.name in args.scenarios]
        seconds = max(4.0, args.latency_seconds / scale)
        latencies = [] if args.throughput_only else [
            await _guarded(bench, f"latency {s.name}", latency(bench, s, rate, seconds))
            for s, rate in zip(SCENARIOS[:2], args.latency_rate_spans, strict=True)]
        drained = None
        if args.backlog_minutes > 0:
            drained = await _guarded(bench, "backlog", backlog(bench, args.backlog_minutes, args.backlog_rate_spans))
    finally:
        rss.stop()
    for s in scenarios:
        if s.get("signal") == "traces":
            s["ratio_to_gateway_grpc"] = _ratio(s.get("spans_per_s"), gateway.get("grpc_spans_per_s"))
            s["ratio_to_chdb_insert_ceiling"] = _ratio(s.get("spans_per_s"), ceiling.get("spans_per_s"))
    return {"scenarios": scenarios, "latency": latencies, "gateway": gateway, "chdb_insert_ceiling": ceiling,
            "backlog": drained, "goals": goals(scenarios, latencies),
            "count_poll_s": COUNT_POLL_S, "peak_rss_process_mib": round(max(r for _, r in rss.samples) / MIB, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the items and of the latency run")
    parser.add_argument("--score", action=argparse.BooleanOptionalAction, default=True,
                        help="run the score stage in the worker too, as deployed (default)")
    parser.add_argument("--traces-per-record", type=int, default=1,
                        help="traces in one raw span record (1: the gateway's split; 8: the old shape)")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--scenarios", nargs="+", choices=[s.name for s in SCENARIOS],
                        default=[s.name for s in SCENARIOS], help="throughput scenarios to run (default: all)")
    parser.add_argument("--throughput-only", action="store_true",
                        help="only the throughput scenarios: no gateway rate, insert ceiling or latency run "
                             "(for profiling a scenario)")
    parser.add_argument("--spans", type=int, default=100_000, help="spans per traces scenario")
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--latency-rate-spans", type=float, nargs=2, default=[25_000, 10_000],
                        metavar=("TRACES_512", "TRACES_8"), help="spans/s of the latency runs")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--backlog-minutes", type=float, default=0.0, help="0: no backlog drain")
    parser.add_argument("--backlog-rate-spans", type=float, default=25_000)
    parser.add_argument("--rss-cap-mib", type=float, default=2048)
    args = parser.parse_args(argv)
    if args.traces_per_record < 1:
        parser.error("--traces-per-record: must be >= 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger().setLevel(logging.INFO)  # the log tail keeps INFO; stderr shows warnings
    logging.getLogger().handlers[0].setLevel(logging.WARNING)
    load_start, started = os.getloadavg(), time.monotonic()
    from pipeline.local_broker import LocalKafkaBroker

    with tempfile.TemporaryDirectory(prefix="ollystack-bench-") as tmp, \
            LocalKafkaBroker(Path(tmp) / "kafka") as broker:
        gateway = {} if args.throughput_only else gateway_rate(broker.bootstrap, args.quick)
        result = asyncio.run(run(args, broker.bootstrap, Path(tmp), gateway))
    print(json.dumps({
        "benchmark": "ingest_pipeline", "quick": args.quick, "score": args.score,
        "traces_per_record": args.traces_per_record, "partitions": args.partitions, **result,
        "wall_s": round(time.monotonic() - started, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_start": [round(x, 2) for x in load_start],
                    "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
