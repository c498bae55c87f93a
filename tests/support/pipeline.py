"""The whole pipeline in the test's loop: topics, a gateway on free ports and a worker."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from core.settings import Settings
from pipeline.gateway.service import Gateway, build_gateway
from pipeline.topics import ensure_topics, topic_specs
from pipeline.worker import build_worker
from sinks.warehouse import Warehouse


@contextlib.asynccontextmanager
async def running_pipeline(settings: Settings, bootstrap: str, warehouse: Warehouse,
                           app_id: str) -> AsyncIterator[Gateway]:
    """``settings``' topics created, its gateway and a worker started (consumer group
    ``app_id``); both stopped on exit, the worker first."""
    await ensure_topics(bootstrap, topic_specs(settings.topics))
    gateway = build_gateway(settings, bootstrap)
    worker = build_worker(settings, bootstrap, warehouse, app_id=app_id)
    await gateway.start()
    try:
        await worker.start()
        try:
            yield gateway
        finally:
            await worker.stop()
    finally:
        await gateway.stop()
