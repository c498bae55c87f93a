"""A real Alertmanager on loopback with the shipped configuration, and a webhook receiver."""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from pipeline.local_broker import free_port
from tests.support.builders import wait_until
from tests.support.tools import ROOT, tool_binary

SHIPPED = ROOT / "ops" / "alertmanager"
STOP_TIMEOUT_S = 10.0
# Waits shortened so that a test sees its notifications within seconds; the routes,
# matchers, inhibition, receivers and templates stay exactly as shipped.
_FAST = {"group_wait": "1s", "group_interval": "1s"}


def config_for_test(folder: Path, webhook_url: str) -> Path:
    """A copy of ops/alertmanager in ``folder`` whose receivers post to ``webhook_url``/<receiver>
    (instead of the URL file of a deployment) and whose group waits are a second."""
    shutil.copytree(SHIPPED, folder, dirs_exist_ok=True)
    config = yaml.safe_load((SHIPPED / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            del hook["url_file"]
            hook["url"] = f"{webhook_url}/{receiver['name']}"
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        route.update({key: value for key, value in _FAST.items() if key in route or route is config["route"]})
        routes += route.get("routes", [])
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Webhook:
    """Records every notification posted to /<receiver>."""

    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def post(self, request: web.Request) -> web.Response:
        self.notifications.append((request.match_info["receiver"], await request.json()))
        return web.Response(text="ok")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{receiver}", self.post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def alerts_of(self, fingerprint: str, status: str) -> list[tuple[str, dict[str, Any]]]:
        """(receiver, alert) of every notified alert with ``fingerprint`` and ``status``."""
        return [(name, a) for name, body in self.notifications for a in body["alerts"]
                if a["fingerprint"] == fingerprint and a["status"] == status]


def get_alerts(url: str) -> dict[str, dict[str, Any]]:
    """GET /api/v2/alerts (the alerts not resolved yet), by fingerprint."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:  # noqa: S310 - our loopback URL
        return {a["fingerprint"]: a for a in json.loads(response.read())}


def ready(url: str) -> bool:
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:  # noqa: S310 - our loopback URL
            return bool(response.status == 200)
    return False


@contextlib.contextmanager
def alertmanager_process(binary: Path, config: Path, data_dir: Path) -> Iterator[str]:
    """Run Alertmanager on a free loopback port (no cluster gossip) and yield its URL; it is
    stopped on exit. Readiness is the caller's to wait for (see ready())."""
    port = free_port()
    log = open(data_dir / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(  # noqa: S603 - our binary, our arguments
        [str(binary), f"--config.file={config}", f"--storage.path={data_dir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.asynccontextmanager
async def running_alertmanager(folder: Path) -> AsyncIterator[tuple[str, Webhook]]:
    """A ready Alertmanager (data and config in ``folder``) with the shipped config notifying
    a Webhook (config_for_test); yields its URL and the webhook, and stops both on exit.
    Skips the test when Alertmanager is not built (tool_binary)."""
    binary = tool_binary("alertmanager")
    hooks = Webhook()
    try:
        config = config_for_test(folder / "config", await hooks.start())
        with alertmanager_process(binary, config, folder) as url:
            await wait_until(lambda: ready(url), 30, "Alertmanager ready")
            yield url, hooks
    finally:
        await hooks.stop()
