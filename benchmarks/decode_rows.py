"""Spans per second: parsing an OTLP trace export request versus parsing it into otel_traces rows.

Usage: ``python benchmarks/decode_rows.py [--spans 512] [--rounds 7] [--min-round-s 0.3]``
Prints one JSON object. ``parse_spans_per_s`` (ParseFromString alone) is the ceiling;
``parse_rows_spans_per_s`` adds ``decode_spans``; ``parse_rows_columns_spans_per_s`` also
turns the rows into insert columns. Each figure is the best of ``--rounds`` rounds, since
the fastest round is the one least disturbed by the rest of the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Runnable as a script from anywhere: the repository root goes on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import google.protobuf  # noqa: E402
from google.protobuf.internal import api_implementation  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,  # noqa: E402
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from schemas.rows import decode_spans, to_columns  # noqa: E402

_ROUTES = ("/api/orders/{id}", "/api/cart", "/api/users/{id}", "/health", "/api/checkout")


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def build_request(span_count: int, seed: int = 1) -> ExportTraceServiceRequest:
    """One resource, one scope, ``span_count`` server spans shaped like HTTP instrumentation:
    10 attributes (strings, ints, a bool, a double) and one exception-style event each."""
    rnd = random.Random(seed)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        _kv(k, v)
        for k, v in {
            "service.name": "checkout",
            "service.version": "1.14.2",
            "deployment.environment.name": "prod",
            "host.name": "ip-10-0-3-17",
            "k8s.pod.name": "checkout-7d9f8b6c5-x2x9q",
            "telemetry.sdk.language": "python",
        }.items()
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.starlette"
    scope_spans.scope.version = "0.48b0"
    start_ns = 1_760_000_000_000_000_000
    for index in range(span_count):
        span = scope_spans.spans.add()
        span.trace_id = rnd.randbytes(16)
        span.span_id = rnd.randbytes(8)
        span.parent_span_id = rnd.randbytes(8)
        route = rnd.choice(_ROUTES)
        span.name = f"GET {route}"
        span.kind = 2
        span.start_time_unix_nano = start_ns + index * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + rnd.randint(100_000, 90_000_000)
        span.attributes.extend(
            _kv(k, v)
            for k, v in {
                "http.request.method": "GET",
                "http.route": route,
                "url.path": route.replace("{id}", str(rnd.randint(1, 99999))),
                "url.scheme": "https",
                "server.address": "shop.example.com",
                "server.port": 443,
                "http.response.status_code": rnd.choice((200, 200, 200, 404, 500)),
                "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0",
                "correlation_id": f"req-{rnd.getrandbits(48):012x}",
                "http.server.duration_ratio": rnd.random(),
            }.items()
        )
        event = span.events.add(name="exception", time_unix_nano=span.start_time_unix_nano + 50_000)
        event.attributes.extend([_kv("exception.type", "ValueError"), _kv("exception.escaped", False)])
        span.status.code = 2 if index % 20 == 0 else 0
    return request


def spans_per_s(step: Callable[[], object], span_count: int, rounds: int, min_round_s: float) -> float:
    """Best rate over ``rounds`` rounds; each round repeats ``step`` for at least min_round_s."""
    best = 0.0
    for _ in range(rounds):
        calls = 0
        began = time.perf_counter()
        elapsed = 0.0
        while elapsed < min_round_s:
            step()
            calls += 1
            elapsed = time.perf_counter() - began
        best = max(best, calls * span_count / elapsed)
    return best


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the measurements, print them as one JSON line and return them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-round-s", type=float, default=0.3)
    args = parser.parse_args(argv)

    data = build_request(args.spans).SerializeToString()
    parse = ExportTraceServiceRequest.FromString
    # Sanity check before timing: every span decodes, so the rate counts real rows.
    assert len(decode_spans(parse(data))) == args.spans

    def parse_rows() -> object:
        return decode_spans(parse(data))

    def parse_rows_columns() -> object:
        return to_columns([record.row for record in decode_spans(parse(data))])

    measure = (args.spans, args.rounds, args.min_round_s)
    parse_rate = spans_per_s(lambda: parse(data), *measure)
    rows_rate = spans_per_s(parse_rows, *measure)
    columns_rate = spans_per_s(parse_rows_columns, *measure)
    result: dict[str, object] = {
        "benchmark": "decode_rows",
        "spans_per_request": args.spans,
        "request_bytes": len(data),
        "parse_spans_per_s": round(parse_rate),
        "parse_rows_spans_per_s": round(rows_rate),
        "parse_rows_columns_spans_per_s": round(columns_rate),
        "rows_to_parse_ratio": round(rows_rate / parse_rate, 4),
        "python": platform.python_version(),
        "protobuf": f"{google.protobuf.__version__} ({api_implementation.Type()})",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
