"""`ollystack demo` through the real SDK into a gateway: what it reports sent is on the topics."""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Literal

import pytest

from pipeline.demo import Faults, demo_main, run_demo
from pipeline.gateway.logic import count_items
from tests.support.gateway import read_raw, running_gateway


def _attr(attrs: object, key: str) -> str | None:
    for kv in attrs:  # type: ignore[attr-defined]
        if kv.key == key:
            return kv.value.string_value or str(kv.value.int_value)
    return None


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_demo_traffic_arrives_whole(kafka_bootstrap: str, unique: str,
                                          protocol: Literal["grpc", "http"]) -> None:
    async with running_gateway(kafka_bootstrap, unique) as gateway:
        faults = Faults(slow=frozenset({"inventory-service"}), fail={"payment-service": 0.5})
        result = await asyncio.to_thread(
            run_demo, f"http://127.0.0.1:{gateway.grpc_port}", f"http://127.0.0.1:{gateway.http_port}",
            protocol, 100.0, 1.0, faults, seed=7)
        assert result.flows >= 20 and result.failed_flows > 0
        assert result.spans_not_sent == result.logs_not_sent == 0
        cfg = gateway.config
        spans = await read_raw(cfg.bootstrap, cfg.spans_topic, "traces", until_items=result.spans)
        logs = await read_raw(cfg.bootstrap, cfg.logs_topic, "logs", until_items=result.logs)
        metrics = await read_raw(cfg.bootstrap, cfg.metrics_topic, "metrics", until_items=1)
    assert sum(count_items("traces", r.request) for r in spans) == result.spans
    assert sum(count_items("logs", r.request) for r in logs) == result.logs

    by_trace: dict[bytes, list[tuple[str, object]]] = {}
    for rec in spans:
        for rs in rec.request.resource_spans:
            service = _attr(rs.resource.attributes, "service.name") or ""
            for span in (s for ss in rs.scope_spans for s in ss.spans):
                by_trace.setdefault(span.trace_id, []).append((service, span))
    assert len(by_trace) == result.flows
    ok_flow = max(by_trace.values(), key=len)  # payment succeeded: every service took part
    assert {service for service, _ in ok_flow} == {
        "api-gateway", "order-service", "payment-service", "notification-service", "inventory-service"}
    ids = {span.span_id: (service, span) for service, span in ok_flow}  # type: ignore[attr-defined]
    roots = [span for _, span in ok_flow if not span.parent_span_id]  # type: ignore[attr-defined]
    assert len(roots) == 1 and roots[0].name == "POST /checkout"
    cross = Counter((ids[span.parent_span_id][0], service) for service, span in ok_flow  # type: ignore[attr-defined]
                    if span.parent_span_id and ids[span.parent_span_id][0] != service)  # type: ignore[attr-defined]
    assert set(cross) == {("api-gateway", "order-service"), ("api-gateway", "inventory-service"),
                          ("order-service", "payment-service"), ("order-service", "notification-service")}
    edges = [span for service, span in (p for t in by_trace.values() for p in t)
             if service == "api-gateway" and not span.parent_span_id]  # type: ignore[attr-defined]
    with_cid = [e for e in edges if _attr(e.attributes, "correlation_id")]  # type: ignore[attr-defined]
    assert 0 < len(with_cid) < len(edges)

    bodies = [lr.body.string_value for rec in logs for rl in rec.request.resource_logs
              for sl in rl.scope_logs for lr in sl.log_records]
    json_ids = {json.loads(b)["correlationId"] for b in bodies if b.startswith("{")}
    assert json_ids == {_attr(e.attributes, "correlation_id") for e in with_cid}  # type: ignore[attr-defined]
    assert all(rec.key for rec in logs)  # every demo log has trace context
    exemplars = [ex for rec in metrics for rm in rec.request.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics for p in m.histogram.data_points for ex in p.exemplars]
    assert exemplars and all(len(ex.trace_id) == 16 for ex in exemplars)


@pytest.mark.asyncio
async def test_demo_command_line(kafka_bootstrap: str, unique: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with running_gateway(kafka_bootstrap, unique) as gateway:
        argv = ["--protocol", "http", "--rate", "50", "--duration", "0.4", "--seed", "3",
                "--slow", "inventory", "--fail", "payment=0.5",
                "--endpoint-http", f"http://127.0.0.1:{gateway.http_port}", "--endpoint-grpc", "unused:1"]
        assert await asyncio.to_thread(demo_main, argv) == 0
        printed = json.loads(capsys.readouterr().out)
        spans = await read_raw(gateway.config.bootstrap, gateway.config.spans_topic, "traces",
                               until_items=printed["spans"])
    assert printed["flows"] > 0 and printed["spans_not_sent"] == 0
    assert sum(count_items("traces", r.request) for r in spans) == printed["spans"]
