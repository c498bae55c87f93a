"""The `ollystack` command: up comes up and stops cleanly, migrate, topics, clear errors."""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]


def ollystack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLYSTACK_")}
    env.update({"OLLYSTACK_DATA_DIR": str(data_dir), "OLLYSTACK_LOG_FORMAT": "text",
                "PYTHONPATH": str(REPO)}, **extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout_s)


def jvms_using(path: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"kafka.Kafka {path}"], capture_output=True, text=True).stdout
    return out.split()


def wait_for_line(proc: subprocess.Popen[str], marker: str, deadline_s: float) -> list[str]:
    """Lines of ``proc``'s stdout up to the one containing ``marker``; fails on exit or deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"no {marker!r} within {deadline_s}s; exit={proc.poll()} output={seen}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_up_prints_endpoints_serves_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    env = ollystack_env(tmp_path, OLLYSTACK_KAFKA_LOCAL_PORT="0", OLLYSTACK_OTLP_GRPC_PORT="0",
                        OLLYSTACK_OTLP_HTTP_PORT="0", OLLYSTACK_API_PORT="0", OLLYSTACK_WORKER_METRICS_PORT="0",
                        OLLYSTACK_TOPICS_PARTITIONS="2")
    log = open(tmp_path / "up.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "up"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        lines = wait_for_line(proc, "Ctrl-C stops everything", 150)
        text = "\n".join(lines)
        for name in ("Kafka", "OTLP gRPC", "OTLP HTTP", "Query API", "ClickHouse", "Worker"):
            assert name in text, text
        api = re.search(r"Query API\s+(http://\S+)", text)
        assert api, text
        assert httpx.get(f"{api.group(1)}/readyz", timeout=10).json() == {"status": "ready"}
        # One process, every role's metrics: each endpoint answers in the exposition format.
        for role, family in (("Gateway", "ollystack_gateway_inflight_bytes"),
                             ("Worker", "ollystack_consumer_lag_records"), ("API", "ollystack_api_requests")):
            url = re.search(rf"{role} metrics\s+(http://\S+)", text)
            assert url, text
            exposed = text_string_to_metric_families(httpx.get(url.group(1), timeout=10).text)
            assert family in {f.name for f in exposed}, role
        ui = re.search(r"Web UI\s+(http://\S+/)", text)  # make test builds the UI first
        assert ui and httpx.get(ui.group(1), timeout=10).headers["content-type"].startswith("text/html"), text
        assert jvms_using(tmp_path / "kafka"), "the local broker should be running"
        proc.send_signal(sig)
        assert proc.wait(90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        log.close()
    assert jvms_using(tmp_path / "kafka") == [], "the broker JVM outlived `ollystack up`"


def test_migrate_applies_once_then_reports_up_to_date(tmp_path: Path) -> None:
    env = ollystack_env(tmp_path)
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_otel_traces" in first.stdout
    second = run_cli("migrate", env=env)
    assert second.returncode == 0 and second.stdout.strip() == "schema is up to date"


def test_topics_create_and_list_against_a_running_broker(tmp_path: Path, kafka_bootstrap: str, unique: str) -> None:
    env = ollystack_env(tmp_path, OLLYSTACK_KAFKA_BOOTSTRAP=kafka_bootstrap,
                        OLLYSTACK_TOPICS_SPANS=f"{unique}-spans", OLLYSTACK_TOPICS_PARTITIONS="3")
    created = run_cli("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert f"created {unique}-spans" in created.stdout
    listed = run_cli("topics", "list", env=env)
    assert f"{unique}-spans\t3" in listed.stdout


@pytest.mark.parametrize(
    ("args", "extra_env", "message"),
    [
        (["migrate"], {"OLLYSTACK_OTLP_GRPC_PORT": "x"}, "OLLYSTACK_OTLP_GRPC_PORT='x'"),
        (["migrate"], {"OLLYSTACK_CLICKHOUSE_URL": "mysql://h"}, "OLLYSTACK_CLICKHOUSE_URL"),
        (["topics", "list"], {}, "needs OLLYSTACK_KAFKA_BOOTSTRAP"),
        (["topics", "list"], {"OLLYSTACK_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, "unreachable"),
        (["alerts", "tail"], {}, "needs OLLYSTACK_KAFKA_BOOTSTRAP"),
        (["replay", "--signal", "traces", "--from", "yesterday"], {}, "--from 'yesterday'"),
        (["correlate", "<script>"], {}, "correlation"),
    ],
    ids=["bad-setting", "bad-url", "no-broker", "unreachable-broker", "alerts-no-broker", "replay-bad-from",
         "correlate-hostile-id"],
)
def test_errors_are_one_clear_line_and_exit_2(tmp_path: Path, args: list[str], extra_env: dict[str, str],
                                              message: str) -> None:
    done = run_cli(*args, env=ollystack_env(tmp_path, **extra_env))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_config_prints_the_settings_in_effect_with_every_secret_redacted(tmp_path: Path) -> None:
    env = ollystack_env(tmp_path, OLLYSTACK_CLICKHOUSE_URL="clickhouse://u:hunter2@h:9000/db",
                        OLLYSTACK_OTLP_AUTH_TOKENS="ingest-hunter2=acme", OLLYSTACK_API_KEYS="read-hunter2=acme:admin",
                        OLLYSTACK_SCORE_WINDOW_S="15")
    done = run_cli("config", env=env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["score"]["window_s"] == 15 and shown["api"]["keys"][0]["role"] == "admin"
    assert "hunter2" not in done.stdout + done.stderr
