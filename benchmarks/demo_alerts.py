"""Alerts on `ollystack demo` traffic over a long run, printed as JSON: a steady baseline, then
a latency step on payment-service and an error burst on inventory-service at once, then the
recovery. Everything is real: the SDK exporters, the gateway, a local Kafka broker, the
worker (enrich, sink, score) and chDB.

Reported: the false alerts (any alert but the two faulted services' own, and any before the
incident), how many windows each alert took after the fault began or ended, and the caller
windows that scored anomalous but were explained by the faulted service.

    python benchmarks/demo_alerts.py [--window-s 5] [--steady-windows 100] [--rate 20]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.score.config import ScoreConfig  # noqa: E402
from core.settings import ClickHouseSettings, Settings  # noqa: E402
from pipeline.alerts_tail import alert_stream  # noqa: E402
from pipeline.demo import Faults, FaultWindow, run_demo  # noqa: E402
from pipeline.gateway.service import build_gateway  # noqa: E402
from pipeline.local_broker import LocalKafkaBroker  # noqa: E402
from pipeline.topics import ensure_topics, topic_specs  # noqa: E402
from pipeline.worker import build_worker  # noqa: E402
from schemas.alerts import Alert  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.migrations import migrate  # noqa: E402

SLOW, FAILING = "payment-service", "inventory-service"


async def run(args: argparse.Namespace) -> dict[str, object]:
    config = ScoreConfig(window_s=args.window_s, lateness_s=min(5.0, float(args.window_s)))
    steady_s, incident_s = args.steady_windows * args.window_s, args.incident_windows * args.window_s
    duration_s = steady_s + incident_s + args.recovery_windows * args.window_s
    with tempfile.TemporaryDirectory() as tmp, LocalKafkaBroker(Path(tmp) / "kafka") as broker:
        settings = Settings.model_validate({"data_dir": tmp, "topics": {"partitions": 2},
                                            "otlp": {"grpc_port": 0, "http_port": 0}})
        await ensure_topics(broker.bootstrap, topic_specs(settings.topics))
        wh = open_warehouse(ClickHouseSettings(), Path(tmp))
        migrate(wh, settings.clickhouse)
        gateway = build_gateway(settings, broker.bootstrap)
        worker = build_worker(settings.model_copy(update={"score": config}), broker.bootstrap, wh)
        alerts: list[Alert] = []

        async def collect() -> None:
            async for alert in alert_stream(broker.bootstrap, settings.topics.alerts, from_beginning=True):
                alerts.append(alert)

        await gateway.start()
        await worker.start()
        reader = asyncio.create_task(collect())
        try:
            incident = Faults(slow=frozenset({SLOW}), fail={FAILING: args.fail_rate})
            started_ns = time.time_ns()
            fault_start_ns = started_ns + int(steady_s * 1e9)
            fault_end_ns = fault_start_ns + int(incident_s * 1e9)
            result = await asyncio.to_thread(
                run_demo, f"http://127.0.0.1:{gateway.grpc_port}", f"http://127.0.0.1:{gateway.http_port}", "grpc",
                args.rate, duration_s, FaultWindow(incident, steady_s, incident_s), seed=args.seed)
            # The last windows close once the watermark passes them: wait for the stored rows.
            last_window = (started_ns + int(duration_s * 1e9)) // config.window_ns - 1
            deadline = time.monotonic() + 4 * args.window_s + 30
            while worker.score.engine.closed_through < last_window and time.monotonic() < deadline:  # type: ignore[union-attr]  # noqa: ASYNC110 - polls the worker's engine, to a deadline
                await asyncio.sleep(0.2)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await worker.stop()
            await gateway.stop()
        rows = wh.query(
            "SELECT toString(ServiceName) AS service, countIf(Warming = 0) AS scored, "
            "countIf(Warming = 0 AND Timestamp < fromUnixTimestamp64Nano({start:Int64})) AS steady, "
            "countIf(notEmpty(AlertInhibitedBy) AND AlertScore >= {t:Float64}) AS explained "
            "FROM default.ollystack_anomalies FINAL WHERE SpanName = '' GROUP BY service ORDER BY service",
            {"t": config.threshold, "start": fault_start_ns - config.window_ns})
    window_ns = config.window_ns

    def delay(alert: Alert) -> float:
        since = fault_start_ns if alert.status == "firing" else fault_end_ns
        return round((alert.updated_at_ns - since) / window_ns, 2)

    expected = {(SLOW, "firing"), (SLOW, "resolved"), (FAILING, "firing"), (FAILING, "resolved")}
    seen = [(a.labels["service"], a.status) for a in alerts]
    # An incident's alert starts with the window the fault began in; anything earlier is false.
    first_fault_window_ns = fault_start_ns - fault_start_ns % window_ns
    false = [a for a in alerts
             if (a.labels["service"], a.status) not in expected or a.starts_at_ns < first_fault_window_ns]
    return {
        "benchmark": "demo_alerts", "window_s": args.window_s, "rate_flows_per_s": args.rate,
        "steady_windows": args.steady_windows, "incident_windows": args.incident_windows,
        "recovery_windows": args.recovery_windows, "spans_sent": result.spans, "spans_not_sent": result.spans_not_sent,
        "scored_service_windows": {r["service"]: int(r["scored"]) for r in rows},
        "steady_scored_service_windows": sum(int(r["steady"]) for r in rows),
        "false_alerts": len(false), "false_alert_list": [(a.labels["service"], a.status) for a in false],
        "alerts": [{"service": a.labels["service"], "status": a.status, "feature": a.annotations.get("feature"),
                    "windows_after_change": delay(a), "impact": a.annotations.get("impact")} for a in alerts],
        "each_fault_fired_once_and_resolved": sorted(seen) == sorted(expected),
        "caller_windows_explained": {r["service"]: int(r["explained"]) for r in rows if int(r["explained"])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window-s", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0, help="demo flows per second")
    parser.add_argument("--steady-windows", type=int, default=100)
    parser.add_argument("--incident-windows", type=int, default=6)
    parser.add_argument("--recovery-windows", type=int, default=10)
    parser.add_argument("--fail-rate", type=float, default=0.6, help="failure probability of inventory-service")
    parser.add_argument("--seed", type=int, default=1)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
