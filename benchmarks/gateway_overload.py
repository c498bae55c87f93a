"""The gateway under overload: many concurrent senders of large requests, over gRPC and HTTP.

Usage: ``python benchmarks/gateway_overload.py [--senders 64] [--requests-each 3]
[--megabytes 12] [--seconds 240]``

Starts a local Kafka broker and the gateway in a child process (default settings:
otlp.max_inflight_bytes 256 MiB, otlp.max_request_bytes 16 MiB). Half the senders use gRPC,
half HTTP; each sends its requests and, like an OTLP client, retries 429 / 503 /
RESOURCE_EXHAUSTED / UNAVAILABLE after the retry hint. Prints one JSON object: the
gateway's peak RSS against the stated cap, the answers by code (no 500 / INTERNAL allowed),
and whether every acknowledged span is on the raw topic. The cap: the idle RSS, plus
otlp.max_inflight_bytes (everything the gateway itself holds), plus two copies of a request
per gRPC call in progress (grpc receives a unary message whole, and hands the handler a
copy, before the gateway can refuse it; HTTP bodies are refused while they are read).
Exit status 1 when a limit is broken.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway_throughput import _GatewayProcess  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from core.settings import OtlpSettings, Settings  # noqa: E402
from tests.support.accounting import read_topic  # noqa: E402

MIB = 1024 * 1024
RETRYABLE_HTTP = {429, 503}


def build_request(megabytes: int, rnd: random.Random) -> tuple[bytes, set[bytes]]:
    """A traces request of about ``megabytes`` MiB: 1 KiB spans, 16 to a trace."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    ids: set[bytes] = set()
    now = time.time_ns()
    for i in range(megabytes * 1024):
        if i % 16 == 0:
            trace = rnd.randbytes(16)
        span = spans.add(trace_id=trace, span_id=rnd.randbytes(8), name="GET /bulk", start_time_unix_nano=now,
                         end_time_unix_nano=now + 1000)
        span.attributes.add(key="payload").value.string_value = rnd.randbytes(450).hex()
        ids.add(span.span_id)
    return request.SerializeToString(), ids


async def send_grpc(port: int, bodies: list[tuple[bytes, set[bytes]]], count: int, answers: Counter[str],
                    acked: set[bytes], acked_requests: list[int]) -> None:
    import grpc
    from google.rpc import error_details_pb2

    options = [("grpc.max_send_message_length", 64 * MIB)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        for body, ids in bodies[:count]:
            for _ in range(100):
                try:
                    await export(body, timeout=60)
                except grpc.aio.AioRpcError as exc:
                    answers[f"grpc {exc.code().name}"] += 1
                    retry = dict(exc.trailing_metadata() or ()).get("google.rpc.retryinfo-bin")
                    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED) and retry:
                        delay = error_details_pb2.RetryInfo.FromString(retry).retry_delay
                        await asyncio.sleep(delay.seconds + delay.nanos / 1e9)
                        continue
                    break
                answers["grpc OK"] += 1
                acked |= ids
                acked_requests.append(len(ids))
                break


async def send_http(port: int, bodies: list[tuple[bytes, set[bytes]]], count: int, answers: Counter[str],
                    acked: set[bytes], acked_requests: list[int]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for body, ids in bodies[:count]:
            for _ in range(100):
                try:
                    response = await client.post("/v1/traces", content=body,
                                                 headers={"content-type": "application/x-protobuf"})
                except httpx.TransportError as exc:
                    answers[f"http {type(exc).__name__}"] += 1
                    await asyncio.sleep(1.0)
                    continue
                answers[f"http {response.status_code}"] += 1
                if response.status_code in RETRYABLE_HTTP:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                if response.status_code == 200:
                    acked |= ids
                    acked_requests.append(len(ids))
                break


async def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    from tests.support.gateway import create_raw_topics

    rnd = random.Random(args.seed)
    bodies = [build_request(args.megabytes, rnd) for _ in range(args.requests_each * 2)]
    topics = await create_raw_topics(bootstrap, f"overload{rnd.randrange(10**8)}", partitions=6)
    settings = Settings(otlp=OtlpSettings(grpc_port=0, http_port=0), topics=topics)
    gateway = _GatewayProcess(bootstrap, settings)
    answers: Counter[str] = Counter()
    acked: set[bytes] = set()
    acked_requests: list[int] = []
    try:
        grpc_port, http_port = await gateway.start()
        idle_rss = await gateway.peak_rss_bytes()
        started = time.perf_counter()
        senders = []
        for n in range(args.senders):
            mine = bodies[n % 2::2] if n % 2 else bodies[::2]
            sender = send_grpc(grpc_port, mine, args.requests_each, answers, acked, acked_requests) if n % 2 == 0 \
                else send_http(http_port, mine, args.requests_each, answers, acked, acked_requests)
            senders.append(sender)
        await asyncio.wait_for(asyncio.gather(*senders), args.seconds)
        wall_s = time.perf_counter() - started
        peak_rss = await gateway.peak_rss_bytes()
        await gateway.stop()
    finally:
        gateway.join()
    on_topic = {span.span_id for record in await read_topic(bootstrap, topics.spans)
                for rs in ExportTraceServiceRequest.FromString(record.value).resource_spans
                for ss in rs.scope_spans for span in ss.spans}
    grpc_senders = (args.senders + 1) // 2
    budget = settings.otlp.max_inflight_bytes
    cap = idle_rss + budget + grpc_senders * 2 * args.megabytes * MIB
    failures = {k: v for k, v in answers.items() if k.endswith((" 500", " INTERNAL", " UNKNOWN"))}
    return {
        "senders": args.senders, "requests_each": args.requests_each, "request_mib": args.megabytes,
        "wall_s": round(wall_s, 1), "acknowledged_requests": len(acked_requests),
        "acknowledged_spans_per_s": round(sum(acked_requests) / wall_s),
        "acknowledged_distinct_spans": len(acked), "acknowledged_missing_from_topic": len(acked - on_topic),
        "answers": dict(sorted(answers.items())), "answers_500": sum(failures.values()),
        "gateway_peak_rss_mib": round(peak_rss / MIB, 1), "gateway_idle_rss_mib": round(idle_rss / MIB, 1),
        "cap_mib": round(cap / MIB, 1), "peak_to_cap": round(peak_rss / cap, 3),
        "cap_is": "idle RSS + otlp.max_inflight_bytes + 2 requests per gRPC call in progress",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--requests-each", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from pipeline.local_broker import LocalKafkaBroker

    with tempfile.TemporaryDirectory() as tmp, LocalKafkaBroker(Path(tmp), message_max_bytes=16 * MIB) as broker:
        result = asyncio.run(run(args, broker.bootstrap))
    print(json.dumps(result))
    return 0 if result["answers_500"] == 0 and result["acknowledged_missing_from_topic"] == 0 \
        and result["peak_to_cap"] <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
