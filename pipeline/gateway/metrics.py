"""The gateway's own Prometheus metrics, in a registry of its own per Gateway."""
from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """Counters of items (spans, log records, data points) per signal, requests per outcome,
    produce latency and in-flight bytes.

    A private registry per instance: several gateways in one process (tests, ``up``)
    must not collide in the global registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.received = Counter("ollystack_gateway_received_items",
                                "Spans, log records or data points received", ["signal"], registry=reg)
        self.accepted = Counter("ollystack_gateway_accepted_items",
                                "Items acknowledged by Kafka and answered OK", ["signal"], registry=reg)
        self.rejected = Counter("ollystack_gateway_rejected_items",
                                "Items not accepted, by reason", ["signal", "reason"], registry=reg)
        self.requests = Counter("ollystack_gateway_requests",
                                "Export requests by protocol and answer", ["signal", "protocol", "code"],
                                registry=reg)
        self.produce_latency = Histogram("ollystack_gateway_produce_seconds",
                                         "From first send to the last Kafka ack of a request",
                                         ["signal"], buckets=_LATENCY_BUCKETS_S, registry=reg)
        self.inflight_bytes = Gauge("ollystack_gateway_inflight_bytes",
                                    "Bytes held: requests being read, decoded or answered, and records "
                                    "handed to Kafka and not yet acknowledged",
                                    registry=reg)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample's current value (0.0 when absent), for tests and health checks."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0
