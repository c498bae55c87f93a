"""`ollystack worker` alone serves the worker's metrics on worker.metrics_port, and only the
worker's: a scrape config per role sees every series once. (The gateway and the API alone
serve theirs on their own ports, checked by their own tests; `up` serves all three, checked
by test_metrics_and_dashboards.py and test_cli.py.)"""
from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.settings import ApiSettings, ClickHouseSettings, OtlpSettings, Settings, WorkerSettings
from pipeline.up import run_up
from tests.support.builders import settings_for
from tests.support.warehouses import migrated_warehouse

OWN = {"gateway": "ollystack_gateway_received_items", "worker": "ollystack_consumer_lag_records",
       "api": "ollystack_api_requests"}
LABEL = {"gateway": "Gateway metrics", "worker": "Worker metrics", "api": "API metrics"}


@pytest.mark.asyncio
async def test_the_worker_alone_serves_its_own_metrics(kafka_bootstrap: str, chdb_dir: Path, unique: str) -> None:
    role = "worker"
    with migrated_warehouse(ClickHouseSettings(database=unique), chdb_dir):
        # The session's chDB folder: chDB allows one a process.
        settings = settings_for(unique, chdb_dir, unique).model_copy(update={
            "kafka": Settings().kafka.model_copy(update={"bootstrap": kafka_bootstrap}),
            "otlp": OtlpSettings(grpc_port=0, http_port=0), "api": ApiSettings(port=0),
            "worker": WorkerSettings(metrics_port=0)})
        ready: asyncio.Future[list[tuple[str, str]]] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        up = asyncio.create_task(run_up(settings, (role,), ready=ready.set_result, stop=stop),
                                 name=f"ollystack {role}")
        try:
            await asyncio.wait({up, ready}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
            if up.done():
                up.result()
            endpoints = dict(ready.result())
            assert [name for name in LABEL.values() if name in endpoints] == [LABEL[role]]
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(endpoints[LABEL[role]])
            assert response.status_code == 200
            families = {f.name for f in text_string_to_metric_families(response.text)}
            assert OWN[role] in families
            assert not {OWN[other] for other in OWN if other != role} & families
        finally:
            stop.set()
            await asyncio.wait_for(up, 90)
