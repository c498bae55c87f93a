"""`ollystack demo`: sample-topology traffic through the real OpenTelemetry Python SDK."""
from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from opentelemetry import baggage, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Protocol = Literal["grpc", "http"]
SERVICES = ("api-gateway", "order-service", "payment-service", "notification-service", "inventory-service")
# Failure rates of the sample topology; --fail overrides them.
BASE_FAILURE_RATES = {"payment-service": 0.05, "inventory-service": 0.03}
# Typical own work per service in ms (the time spent in children comes on top).
BASE_LATENCY_MS = {"api-gateway": 3.0, "order-service": 8.0, "payment-service": 40.0,
                   "notification-service": 5.0, "inventory-service": 4.0}
SLOW_EXTRA_MS = 300.0
FLUSH_EVERY_FLOWS = 50  # fast-forward: flows between waits for the exporters
NETWORK_MS = 1.0
PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def service_name(name: str) -> str:
    """'inventory' or 'inventory-service' -> 'inventory-service'; ValueError when unknown."""
    for full in SERVICES:
        if name in (full, full.removesuffix("-service")):
            return full
    raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")


@dataclass(frozen=True)
class Faults:
    """Injected faults: services made slow, and failure probabilities per service."""

    slow: frozenset[str] = frozenset()
    fail: Mapping[str, float] = field(default_factory=dict)
    slow_ms: Mapping[str, float] = field(default_factory=dict)  # extra ms per slow service (default SLOW_EXTRA_MS)

    def failure_rate(self, service: str) -> float:
        return self.fail.get(service, BASE_FAILURE_RATES.get(service, 0.0))

    def extra_ms(self, service: str) -> float:
        """The typical extra latency of a slow ``service`` (0 when it is not slow)."""
        return self.slow_ms.get(service, SLOW_EXTRA_MS) if service in self.slow else 0.0


@dataclass(frozen=True)
class FaultWindow:
    """``faults`` from ``after_s`` for ``for_s`` seconds of a run (None: to the end), none
    before or after: a steady baseline, the incident, then the recovery."""

    faults: Faults
    after_s: float = 0.0
    for_s: float | None = None

    def __call__(self, elapsed_s: float) -> Faults:
        ended = self.for_s is not None and elapsed_s >= self.after_s + self.for_s
        return self.faults if self.after_s <= elapsed_s and not ended else Faults()


# Which faults apply at a number of seconds into the run.
FaultSchedule = Callable[[float], Faults]


@dataclass(frozen=True)
class FlowPlan:
    """Every random choice of one flow, drawn up front so a seed makes runs repeatable."""

    with_correlation_id: bool
    order_id: int
    latency_ms: Mapping[str, float]
    failed: frozenset[str]


def plan_flow(rng: random.Random, faults: Faults) -> FlowPlan:
    """Draw one flow: about half carry a correlation ID; latencies; which services fail."""
    latency = {s: rng.uniform(0.5, 1.5) * BASE_LATENCY_MS[s]
               + (rng.uniform(1.0, 1.3) * faults.extra_ms(s) if s in faults.slow else 0.0) for s in SERVICES}
    failed = frozenset(s for s in SERVICES if rng.random() < faults.failure_rate(s))
    return FlowPlan(rng.random() < 0.5, rng.randrange(10**6), latency, failed)


@dataclass
class DemoResult:
    """What a run produced; ``spans`` and ``logs`` count what the exporters got acknowledged."""

    flows: int = 0
    failed_flows: int = 0
    spans: int = 0
    logs: int = 0
    spans_not_sent: int = 0
    logs_not_sent: int = 0


class _CountingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter) -> None:
        self.inner, self.sent, self.lost = inner, 0, 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.sent += len(spans)
        else:
            self.lost += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _CountingLogExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner, self.sent, self.lost = inner, 0, 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        result = self.inner.export(batch)
        if result == LogRecordExportResult.SUCCESS:
            self.sent += len(batch)
        else:
            self.lost += len(batch)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _exporters(protocol: Protocol, endpoint_grpc: str, endpoint_http: str) -> tuple[Any, Any, Any]:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )

        kw: dict[str, Any] = {"endpoint": endpoint_grpc, "insecure": not endpoint_grpc.startswith("https:")}
        return OTLPSpanExporter(**kw), OTLPLogExporter(**kw), OTLPMetricExporter(**kw)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogs,
    )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetrics,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpans,
    )

    base = endpoint_http.rstrip("/")
    return (HttpSpans(endpoint=f"{base}/v1/traces"), HttpLogs(endpoint=f"{base}/v1/logs"),
            HttpMetrics(endpoint=f"{base}/v1/metrics"))


class _Service:
    """One service of the topology: its own Resource and tracer, logger and meter providers
    (not the global ones, so a demo can run inside tests and next to other code)."""

    def __init__(self, name: str, protocol: Protocol, endpoint_grpc: str, endpoint_http: str) -> None:
        resource = Resource.create({"service.name": name, "service.namespace": "ollystack-demo",
                                    "service.version": "1.0.0", "deployment.environment.name": "demo"})
        spans, logs, metrics = _exporters(protocol, endpoint_grpc, endpoint_http)
        self.span_exporter, self.log_exporter = _CountingSpanExporter(spans), _CountingLogExporter(logs)
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.span_exporter, schedule_delay_millis=500))
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(self.log_exporter, schedule_delay_millis=500))
        reader = PeriodicExportingMetricReader(metrics, export_interval_millis=5000)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        self.tracer = self.tracer_provider.get_tracer("ollystack.demo", "1.0.0")
        self.logger = self.logger_provider.get_logger("ollystack.demo", "1.0.0")
        self.duration = self.meter_provider.get_meter("ollystack.demo", "1.0.0").create_histogram(
            "http.server.request.duration", unit="s", description="Server request duration")

    def log(self, ctx: Context, t_ns: int, severity: SeverityNumber, body: Any, **attrs: Any) -> None:
        self.logger.emit(timestamp=t_ns, context=ctx, severity_number=severity,
                         severity_text=severity.name.rstrip("0123456789"), body=body, attributes=attrs)

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()

    def shutdown(self) -> None:
        for provider in (self.tracer_provider, self.logger_provider, self.meter_provider):
            provider.shutdown()


def _ms(value: float) -> int:
    return int(value * 1_000_000)


# A handler does a service's calls to others: (service, context, start ns, plan) -> (end ns, ok).
_Handler = Callable[[_Service, Context, int, FlowPlan], tuple[int, bool]]


class _Topology:
    """api-gateway -> order-service (-> payment-service, -> notification-service) and
    inventory-service (-> its cache), with W3C traceparent and baggage in dict carriers."""

    def __init__(self, services: dict[str, _Service]) -> None:
        self.services = services

    def flow(self, plan: FlowPlan, start_ns: int | None = None) -> bool:
        """Emit one user flow starting at ``start_ns`` (default now); True when it succeeded."""
        api, start = self.services["api-gateway"], time.time_ns() if start_ns is None else start_ns
        ctx, cid = Context(), None
        if plan.with_correlation_id:
            cid = f"demo-{uuid.uuid4().hex[:16]}"
            ctx = baggage.set_baggage("correlation_id", cid, ctx)
        edge = api.tracer.start_span("POST /checkout", ctx, SpanKind.SERVER, start_time=start, attributes={
            "http.request.method": "POST", "http.route": "/checkout", "url.path": "/checkout"})
        if cid:
            edge.set_attribute("correlation_id", cid)
        edge_ctx = trace.set_span_in_context(edge, ctx)
        t, order_ok = self._call(api, edge_ctx, "order-service", "POST /orders", start + _ms(NETWORK_MS),
                                 plan, self._order)
        t, stock_ok = self._call(api, edge_ctx, "inventory-service", "GET /stock", t, plan, self._inventory)
        end = t + _ms(plan.latency_ms["api-gateway"])
        failed_here = "api-gateway" in plan.failed
        ok = order_ok and stock_ok and not failed_here
        self._finish(api, edge, edge_ctx, "/checkout", start, end, 500 if failed_here else 200 if ok else 502)
        return ok

    def _call(self, caller: _Service, ctx: Context, callee: str, route: str, t: int,
              plan: FlowPlan, handler: _Handler) -> tuple[int, bool]:
        method, path = route.split(" ", 1)
        client = caller.tracer.start_span(f"{method} {callee}{path}", ctx, SpanKind.CLIENT, start_time=t,
                                          attributes={"server.address": callee, "http.request.method": method})
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier, context=trace.set_span_in_context(client, ctx))
        end, status = self._serve(callee, route, carrier, t + _ms(NETWORK_MS), plan, handler)
        client.set_attribute("http.response.status_code", status)
        if status >= 500:
            client.set_status(Status(StatusCode.ERROR, f"{callee} answered {status}"))
        client.end(end_time=end + _ms(NETWORK_MS))
        return end + _ms(NETWORK_MS), status < 500

    def _serve(self, name: str, route: str, carrier: dict[str, str], t: int, plan: FlowPlan,
               handler: _Handler) -> tuple[int, int]:
        svc, ctx = self.services[name], PROPAGATOR.extract(carrier)
        method, path = route.split(" ", 1)
        span = svc.tracer.start_span(route, ctx, SpanKind.SERVER, start_time=t,
                                     attributes={"http.request.method": method, "http.route": path})
        span_ctx = trace.set_span_in_context(span, ctx)
        end, children_ok = handler(svc, span_ctx, t, plan)
        end += _ms(plan.latency_ms[name])
        status = 500 if name in plan.failed else (502 if not children_ok else 200)
        self._finish(svc, span, span_ctx, path, t, end, status)
        return end, status

    @staticmethod
    def _finish(svc: _Service, span: Any, ctx: Context, route: str, start: int, end: int, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        attrs: dict[str, str | int] = {"http.route": route, "http.response.status_code": status}
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            svc.log(ctx, end, SeverityNumber.ERROR, f"request failed with HTTP {status}", **attrs)
        else:
            svc.log(ctx, end, SeverityNumber.INFO, f"handled {route}", **attrs)
        # Recorded with the span's context so the SDK attaches it as an exemplar.
        svc.duration.record((end - start) / 1e9, attrs, context=ctx)
        span.end(end_time=end)

    def _order(self, svc: _Service, ctx: Context, t: int, plan: FlowPlan) -> tuple[int, bool]:
        cid = baggage.get_baggage("correlation_id", ctx)
        if cid:  # a JSON body carrying the correlation ID, as many services log
            svc.log(ctx, t, SeverityNumber.INFO, json.dumps(
                {"event": "order.received", "orderId": plan.order_id, "correlationId": cid}))
        t, paid = self._call(svc, ctx, "payment-service", "POST /charge", t, plan, _leaf)
        if not paid:
            return t, False
        return self._call(svc, ctx, "notification-service", "POST /notify", t, plan, _leaf)

    @staticmethod
    def _inventory(svc: _Service, ctx: Context, t: int, plan: FlowPlan) -> tuple[int, bool]:
        cache = svc.tracer.start_span("GET stock:*", ctx, SpanKind.CLIENT, start_time=t, attributes={
            "db.system.name": "redis", "db.operation.name": "GET", "server.address": "cache"})
        end = t + _ms(0.3 + plan.latency_ms["inventory-service"] / 10)
        if "inventory-service" in plan.failed:
            cache.set_status(Status(StatusCode.ERROR, "cache connection refused"))
            svc.log(trace.set_span_in_context(cache, ctx), end, SeverityNumber.WARN, "cache unavailable")
        cache.end(end_time=end)
        return end, True


def _leaf(svc: _Service, ctx: Context, t: int, plan: FlowPlan) -> tuple[int, bool]:
    return t, True


def run_demo(endpoint_grpc: str, endpoint_http: str, protocol: Protocol, rate_per_s: float,
             duration_s: float | None, faults: Faults | FaultSchedule = Faults(), *, seed: int | None = None,
             stop: threading.Event | None = None, speedup: float | None = None,
             stamped_from_ns: int | None = None) -> DemoResult:
    """Send ``rate_per_s`` flows a second for ``duration_s`` (None: until ``stop`` is set or
    Ctrl-C), then flush; each flow is stamped at its scheduled time, so a sender that fell
    behind catches up without changing the rate the data shows. ``faults`` apply throughout,
    or as a schedule of the seconds since the start says. The seed fixes every choice
    (latencies, failures, which flows carry a correlation ID); trace and correlation IDs stay
    unique per run.

    ``speedup`` (needs ``duration_s``) fast-forwards a simulated clock: the run's
    ``duration_s`` seconds of traffic are stamped as the ``duration_s`` seconds before the
    call, or from ``stamped_from_ns`` on (backdated, so no span is ahead of the wall
    clock), and sent ``speedup`` times faster than real time; the schedule sees the
    simulated seconds. ValueError when ``speedup`` is not > 1 or no ``duration_s`` is given."""
    if speedup is not None and (duration_s is None or not speedup > 1):
        raise ValueError("speedup needs a duration_s and must be > 1")
    rng, stop = random.Random(seed), stop or threading.Event()
    schedule: FaultSchedule = (lambda _: faults) if isinstance(faults, Faults) else faults
    services = {name: _Service(name, protocol, endpoint_grpc, endpoint_http) for name in SERVICES}
    topology, result = _Topology(services), DemoResult()
    started = next_at = time.monotonic()
    wall_started_ns = time.time_ns()
    if stamped_from_ns is None:
        stamped_from_ns = wall_started_ns - int((duration_s or 0) * 1e9)
    try:
        while not stop.is_set():
            if speedup is None:
                # A flow is stamped at its scheduled instant, not when this thread got to it:
                # on a busy machine the sender falls behind and catches up, and wall-clock
                # stamps would turn that into a dip and a burst of traffic in the data.
                elapsed_s = next_at - started
                stamp_ns = wall_started_ns + int(elapsed_s * 1e9)
            else:
                elapsed_s = result.flows / rate_per_s
                stamp_ns = stamped_from_ns + int(elapsed_s * 1e9)
            if duration_s is not None and elapsed_s >= duration_s:
                break
            result.flows += 1
            result.failed_flows += not topology.flow(plan_flow(rng, schedule(elapsed_s)), stamp_ns)
            if speedup is not None and result.flows % FLUSH_EVERY_FLOWS == 0:
                # Fast-forwarded flows can come faster than the exporters send on a busy
                # machine, and a full SDK queue drops spans silently: wait for the exports.
                for svc in services.values():
                    svc.flush()
            next_at += 1.0 / rate_per_s / (speedup or 1.0)
            stop.wait(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        for svc in services.values():
            svc.shutdown()
    for svc in services.values():
        result.spans += svc.span_exporter.sent
        result.spans_not_sent += svc.span_exporter.lost
        result.logs += svc.log_exporter.sent
        result.logs_not_sent += svc.log_exporter.lost
    return result


def _failure(text: str) -> tuple[str, float]:
    name, sep, prob = text.partition("=")
    expected = f"{text!r}: expected SERVICE=P with P in [0, 1]"
    try:
        value = float(prob)
        service = service_name(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{expected} ({exc})") from None
    if not sep or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(expected)
    return service, value


def _slow(text: str) -> str:
    try:
        return service_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def demo_main(argv: Sequence[str] | None = None) -> int:
    """`ollystack demo` flags; prints the DemoResult as JSON; 0 when every span and log was sent."""
    parser = argparse.ArgumentParser(prog="ollystack demo", description=__doc__)
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--rate", type=float, default=5.0, help="flows per second")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    parser.add_argument("--slow", type=_slow, action="append", default=[], metavar="SERVICE")
    parser.add_argument("--fail", type=_failure, action="append", default=[], metavar="SERVICE=P")
    parser.add_argument("--fault-after", type=float, default=0.0, metavar="SECONDS",
                        help="--slow and --fail start this long into the run (default: at once)")
    parser.add_argument("--fault-for", type=float, default=None, metavar="SECONDS",
                        help="... and last this long, then the services recover (default: to the end)")
    parser.add_argument("--endpoint-grpc", default="http://127.0.0.1:4317")
    parser.add_argument("--endpoint-http", default="http://127.0.0.1:4318")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be > 0")
    if args.fault_after < 0 or (args.fault_for is not None and args.fault_for <= 0):
        parser.error("--fault-after must be >= 0 and --fault-for > 0")
    faults = FaultWindow(Faults(frozenset(args.slow), dict(args.fail)), args.fault_after, args.fault_for)
    result = run_demo(args.endpoint_grpc, args.endpoint_http, args.protocol, args.rate, args.duration,
                      faults, seed=args.seed)
    print(json.dumps(asdict(result)))
    return 0 if not (result.spans_not_sent or result.logs_not_sent) else 1


if __name__ == "__main__":
    sys.exit(demo_main())
