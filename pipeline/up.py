"""Process wiring: start the roles a process runs, print where they listen, stop them cleanly."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from core.errors import ConfigError
from core.settings import Settings
from sinks.backend import describe, open_warehouse
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)
ROLES = ("gateway", "worker", "api")


@contextlib.asynccontextmanager
async def kafka_bootstrap(settings: Settings) -> AsyncIterator[str]:
    """The configured Kafka, or a local broker started for the lifetime of the block."""
    if settings.kafka.bootstrap:
        yield settings.kafka.bootstrap
        return
    from pipeline.local_broker import LocalKafkaBroker

    broker = LocalKafkaBroker(
        settings.data_dir / "kafka", settings.host, settings.kafka.local_port,
        message_max_bytes=settings.kafka.max_message_bytes,
    )
    await asyncio.to_thread(broker.start)
    try:
        yield broker.bootstrap
    finally:
        await asyncio.to_thread(broker.stop)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _start_roles(
    settings: Settings, roles: Iterable[str], bootstrap: str, stack: contextlib.AsyncExitStack
) -> list[tuple[str, str]]:
    endpoints: list[tuple[str, str]] = [("Kafka", bootstrap)]
    warehouse: Warehouse | None = None
    if "worker" in roles or "api" in roles:
        from sinks.migrations import migrate

        warehouse = open_warehouse(settings.clickhouse, settings.data_dir)
        stack.callback(warehouse.close)
        await asyncio.to_thread(migrate, warehouse, settings.clickhouse)
        endpoints.append(("ClickHouse", describe(settings.clickhouse, settings.data_dir)))
    if "gateway" in roles:
        from pipeline.gateway.service import build_gateway

        gateway = build_gateway(settings, bootstrap)
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        endpoints += [("OTLP gRPC", f"{settings.host}:{gateway.grpc_port}"),
                      ("OTLP HTTP", f"http://{settings.host}:{gateway.http_port}"),
                      ("Gateway metrics", f"http://{settings.host}:{gateway.http_port}/metrics")]
    if warehouse is not None:
        endpoints += await _start_readers(settings, roles, bootstrap, warehouse, stack)
    return endpoints


async def _start_readers(settings: Settings, roles: Iterable[str], bootstrap: str, warehouse: Warehouse,
                         stack: contextlib.AsyncExitStack) -> list[tuple[str, str]]:
    """The roles on the warehouse: the worker and the API."""
    endpoints: list[tuple[str, str]] = []
    if "worker" in roles:
        from pipeline.worker import build_worker

        worker = build_worker(settings, bootstrap, warehouse)
        await worker.start()
        stack.push_async_callback(worker.stop)
        endpoints.append(("Worker", f"ingest groups {', '.join(worker.ingest.groups)}; Faust app {worker.app_id}, "
                                    f"agents: {', '.join(worker.agent_names) or 'none'}; "
                                    f"rollups refreshed every {settings.rollups.interval_s:g} s"))
        from pipeline.worker_endpoint import worker_endpoint

        # The worker has no port of its own otherwise: this one is for Prometheus.
        endpoint = worker_endpoint(worker.metrics.registry, worker.healthy, settings.host,
                                   settings.worker.metrics_port)
        await endpoint.start()
        stack.push_async_callback(endpoint.stop)
        endpoints.append(("Worker metrics", f"http://{settings.host}:{endpoint.port}/metrics"))
    if "api" in roles:
        from api.server import ApiServer
        from api.ui import ui_built

        api = ApiServer(settings, warehouse)
        await api.start()
        stack.push_async_callback(api.stop)
        endpoints += [("Query API", f"http://{settings.host}:{api.port}"),
                      ("API metrics", f"http://{settings.host}:{api.port}/metrics")]
        endpoints.append(("Web UI", f"http://{settings.host}:{api.port}/" if ui_built()
                          else "not built: run `make ui` (needs Node.js and npm), then reload"))
    return endpoints


async def run_up(settings: Settings, roles: Iterable[str] = ROLES,
                 ready: Callable[[list[tuple[str, str]]], Any] | None = None,
                 stop: asyncio.Event | None = None) -> int:
    """Run ``roles`` in this process until SIGINT or SIGTERM (or, given, until ``stop`` is
    set), then stop them in reverse.

    Topics are created and migrations applied before any role starts. ``ready`` (for tests)
    is called with the printed (name, where) endpoints once every endpoint listens.
    Returns the exit code."""
    roles = tuple(roles)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ConfigError(f"unknown roles {sorted(unknown)}; allowed: {ROLES}")
    stop = stop or _stop_event()
    from pipeline.topics import align_topic_configs, ensure_topics, topic_specs

    async with kafka_bootstrap(settings) as bootstrap, contextlib.AsyncExitStack() as stack:
        specs = topic_specs(settings.topics)
        await ensure_topics(bootstrap, specs)
        # Warn, never alter: topic configs belong to whoever runs the broker (see README).
        await align_topic_configs(bootstrap, specs, alter=False)
        endpoints = await _start_roles(settings, roles, bootstrap, stack)
        width = max(len(name) for name, _ in endpoints)
        print("OllyStack is up:", flush=True)
        for name, where in endpoints:
            print(f"  {name.ljust(width)}  {where}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        if ready is not None:
            ready(endpoints)
        await stop.wait()
        print("stopping ...", flush=True)
    print("stopped", flush=True)
    return 0
