"""Forwarding to Alertmanager: retried while it is busy or down, given up on refusals, counted."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from agents.score.alertmanager import AlertmanagerForwarder
from schemas.alerts import Alert
from sinks.retry import Backoff

pytestmark = pytest.mark.asyncio
ALERT = Alert({"alertname": "OllyStackAnomaly", "service": "checkout"}, {"summary": "slow"}, 1_763_856_000_000_000_000,
              "http://olly/api/v1/anomalies")


class FakeAlertmanager:
    """Answers POST /api/v2/alerts with the given statuses in turn, then 200; records bodies."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.bodies = list(statuses), []  # type: list[int], list[Any]

    async def post(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


async def until(done: Callable[[], bool], deadline_s: float = 30.0) -> None:
    """Wait for ``done()`` with a deadline: the forwarder posts from a task of its own."""
    end = asyncio.get_running_loop().time() + deadline_s
    while not done():
        assert asyncio.get_running_loop().time() < end, "the forwarder did not post in time"
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Any]:
    runners = []

    async def start(fake: FakeAlertmanager) -> str:
        app = web.Application()
        app.router.add_post("/api/v2/alerts", fake.post)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def forwarder(url: str, failures: list[int]) -> AlertmanagerForwarder:
    return AlertmanagerForwarder(url, retries=3, timeout_s=2.0, backoff=Backoff(0.01, 0.02),
                                 on_failure=lambda: failures.append(1))


@pytest.mark.parametrize("statuses, accepted, posts", [
    ([], True, 1), ([503, 429], True, 3), ([503, 503, 503], False, 3), ([400], False, 1),
], ids=["accepted", "busy-then-accepted", "busy-every-time", "refused-is-final"])
async def test_batches_are_retried_only_while_retrying_can_help(serve: Any, statuses: list[int], accepted: bool,
                                                                posts: int) -> None:
    fake = FakeAlertmanager(statuses)
    failures: list[int] = []
    fwd = forwarder(await serve(fake), failures)
    try:
        assert await fwd.send([ALERT]) is accepted
    finally:
        await fwd.close()
    assert len(fake.bodies) == posts
    assert fake.bodies[0] == [{"labels": dict(ALERT.labels), "annotations": {"summary": "slow"},
                               "startsAt": "2025-11-23T00:00:00.000Z", "generatorURL": "http://olly/api/v1/anomalies"}]


async def test_background_batches_go_in_order_and_failures_are_counted(serve: Any) -> None:
    fake = FakeAlertmanager([])
    failures: list[int] = []
    fwd = forwarder(await serve(fake), failures)
    down = forwarder("http://127.0.0.1:9", failures)  # discard port: connection refused
    try:
        fwd.submit([ALERT])
        fwd.submit([ALERT.resolve(1_763_856_060_000_000_000, 0)])
        down.submit([ALERT])
        await until(lambda: len(fake.bodies) == 2 and failures == [1])
    finally:
        await fwd.close()
        await down.close()
    assert ["endsAt" in body[0] for body in fake.bodies] == [False, True]
    assert failures == [1]
