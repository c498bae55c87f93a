"""Accepted spans per second through the gateway (OTLP gRPC and HTTP) against a raw aiokafka producer.

Usage: ``python benchmarks/gateway_throughput.py [--bootstrap HOST:PORT] [--requests 300]
[--spans 512] [--concurrency 8]``

Starts a local Kafka broker unless ``--bootstrap`` is given, runs the gateway in a child
process (so the load generator does not share its event loop), sends ``--requests`` export
requests of ``--spans`` spans from ``--concurrency`` concurrent clients over gRPC, then over
HTTP (protobuf), and finally sends the very same split records with a raw aiokafka producer
configured like the gateway's (acks=all, idempotent, same compression) to the same broker.
Prints one JSON object: spans_per_s for grpc, http and raw_producer, and the ratios.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import platform
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, get_args

# Runnable as a script from anywhere: the repository root goes on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,  # noqa: E402
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from core.settings import Compression, KafkaSettings, OtlpSettings, Settings  # noqa: E402
from pipeline.gateway.logic import KafkaRecord, split_request  # noqa: E402

SPANS_PER_TRACE = 8
DISTINCT_REQUESTS = 16
WARMUP_REQUESTS = 10


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_request(spans: int, rnd: random.Random) -> bytes:
    """One resource and scope; traces of SPANS_PER_TRACE spans shaped like HTTP server spans."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(_kv(k, v) for k, v in {
        "service.name": "checkout", "service.version": "1.14.2", "deployment.environment.name": "prod",
        "host.name": "ip-10-0-3-17", "telemetry.sdk.language": "python"}.items())
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.asgi"
    now = time.time_ns()
    for i in range(spans):
        if i % SPANS_PER_TRACE == 0:
            trace_id = rnd.randbytes(16)
        span = ss.spans.add(trace_id=trace_id, span_id=rnd.randbytes(8), name="GET /api/orders/{id}",
                            kind=2, start_time_unix_nano=now, end_time_unix_nano=now + rnd.randrange(10**7))
        attrs: dict[str, str | int] = {
            "http.request.method": "GET", "http.route": "/api/orders/{id}", "url.path": f"/api/orders/{i}",
            "http.response.status_code": 200, "server.address": "checkout", "user_agent.original": "bench/1.0",
            "client.address": f"10.0.{i % 255}.{rnd.randrange(255)}", "network.protocol.version": "1.1"}
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return request.SerializeToString()


def _peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _serve_gateway(bootstrap: str, settings_json: str, conn: Any) -> None:
    """Child process: run a gateway; answer "cpu" with its CPU seconds so far, "rss" with its
    peak resident bytes, and "stop" with its accepted-spans counter before stopping."""
    from pipeline.gateway import build_gateway

    async def run() -> None:
        gateway = build_gateway(Settings.model_validate_json(settings_json), bootstrap)
        await gateway.start()
        conn.send((gateway.grpc_port, gateway.http_port))
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, conn.recv)) in ("cpu", "rss"):
            conn.send(time.process_time() if command == "cpu" else _peak_rss_bytes())
        conn.send(gateway.metrics.value("ollystack_gateway_accepted_items_total", {"signal": "traces"}))
        await gateway.stop()

    asyncio.run(run())


class _GatewayProcess:
    """The gateway in a spawned child process, so the load generator does not share its loop."""

    def __init__(self, bootstrap: str, settings: Settings) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_gateway, args=(bootstrap, settings.model_dump_json(), child))

    async def _ask(self, command: str | None = None) -> Any:
        if command:
            self._conn.send(command)
        return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def start(self) -> tuple[int, int]:
        self._proc.start()
        return tuple(await self._ask())  # type: ignore[return-value]

    async def cpu_s(self) -> float:
        return float(await self._ask("cpu"))

    async def peak_rss_bytes(self) -> int:
        return int(await self._ask("rss"))

    async def stop(self) -> int:
        accepted = int(await self._ask("stop"))
        self.join()
        return accepted

    def join(self) -> None:
        self._proc.join(60)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


async def _measured(gateway: _GatewayProcess, run: Awaitable[tuple[float, int]]) -> tuple[float, int, float]:
    """(wall seconds, failed requests, gateway CPU seconds) of one phase."""
    cpu_before = await gateway.cpu_s()
    wall_s, failed = await run
    return wall_s, failed, await gateway.cpu_s() - cpu_before


async def _drive(send: Callable[[bytes], Awaitable[bool]], bodies: list[bytes], requests: int,
                 concurrency: int) -> tuple[float, int]:
    """Run ``requests`` sends from ``concurrency`` workers; (seconds, failed sends)."""
    for body in bodies[:WARMUP_REQUESTS]:
        await send(body)
    next_index, failed = 0, 0

    async def worker() -> None:
        nonlocal next_index, failed
        while next_index < requests:
            body = bodies[next_index % len(bodies)]
            next_index += 1
            failed += not await send(body)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, failed


async def bench_grpc(port: int, bodies: list[bytes], requests: int, concurrency: int) -> tuple[float, int]:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")

        async def send(body: bytes) -> bool:
            try:
                await export(body, timeout=30)
            except grpc.aio.AioRpcError:
                return False
            else:
                return True

        return await _drive(send, bodies, requests, concurrency)


async def bench_http(port: int, bodies: list[bytes], requests: int, concurrency: int) -> tuple[float, int]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        async def send(body: bytes) -> bool:
            response = await client.post("/v1/traces", content=body,
                                         headers={"content-type": "application/x-protobuf"})
            return response.status_code == 200

        return await _drive(send, bodies, requests, concurrency)


async def bench_raw(bootstrap: str, topic: str, compression: str, split: dict[bytes, list[KafkaRecord]],
                    bodies: list[bytes], requests: int, concurrency: int) -> tuple[float, int]:
    """The same records the gateway writes, produced like the gateway does (acks=all, idempotent),
    one request's records awaited together, without any OTLP serving."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                compression_type=None if compression == "none" else compression,
                                max_batch_size=512 * 1024, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        async def send(body: bytes) -> bool:
            futures = [await producer.send(topic, r.value, key=r.key) for r in split[body]]
            await asyncio.gather(*futures)
            return True

        return await _drive(send, bodies, requests, concurrency)
    finally:
        await producer.stop()


async def _run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    from tests.support.gateway import create_raw_topics

    rnd = random.Random(args.seed)
    bodies = [build_request(args.spans, rnd) for _ in range(DISTINCT_REQUESTS)]
    topics = await create_raw_topics(bootstrap, f"bench{rnd.randrange(10**8)}", partitions=6)
    settings = Settings(otlp=OtlpSettings(grpc_port=0, http_port=0), topics=topics,
                        kafka=KafkaSettings(compression=args.compression))
    gateway = _GatewayProcess(bootstrap, settings)
    try:
        grpc_port, http_port = await gateway.start()
        grpc_s, grpc_failed, grpc_cpu_s = await _measured(
            gateway, bench_grpc(grpc_port, bodies, args.requests, args.concurrency))
        http_s, http_failed, http_cpu_s = await _measured(
            gateway, bench_http(http_port, bodies, args.requests, args.concurrency))
        gateway_accepted = await gateway.stop()
    finally:
        gateway.join()
    split = {b: split_request("traces", ExportTraceServiceRequest.FromString(b), 8 * 1024 * 1024 - 1024).records
             for b in bodies}
    raw_s, _ = await bench_raw(bootstrap, topics.spans, args.compression, split, bodies,
                               args.requests, args.concurrency)
    spans = args.requests * args.spans
    rates = {"grpc": spans / grpc_s, "http": spans / http_s, "raw_producer": spans / raw_s}
    return {
        "spans_per_request": args.spans, "requests": args.requests, "concurrency": args.concurrency,
        "records_per_request": len(split[bodies[0]]), "compression": args.compression,
        "spans_per_s": {k: round(v) for k, v in rates.items()},
        "ratio_grpc_to_raw": round(rates["grpc"] / rates["raw_producer"], 3),
        "ratio_http_to_raw": round(rates["http"] / rates["raw_producer"], 3),
        "failed_requests": {"grpc": grpc_failed, "http": http_failed},
        "gateway_accepted_spans": gateway_accepted,
        # Gateway CPU seconds per wall second: near 1.0 means the gateway's one core was the limit.
        "gateway_cpu_share": {"grpc": round(grpc_cpu_s / grpc_s, 2), "http": round(http_cpu_s / http_s, 2)},
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="", help="a running Kafka (default: start a local broker)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--compression", choices=get_args(Compression), default="zstd")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.bootstrap:
        result = asyncio.run(_run(args, args.bootstrap))
    else:
        from pipeline.local_broker import LocalKafkaBroker

        with tempfile.TemporaryDirectory() as tmp, LocalKafkaBroker(Path(tmp)) as broker:
            result = asyncio.run(_run(args, broker.bootstrap))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
