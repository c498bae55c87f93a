"""compose.yaml is consistent with the project: its OLLYSTACK_* variables are real settings with
valid values, every file it mounts exists, secrets come only from the environment, and what
Prometheus scrapes and Alertmanager runs match the processes and the shipped configuration."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core.settings import load_settings
from tests.support.deployment import interpolate, interpolated_names, setting_env_names

ROOT = Path(__file__).resolve().parents[3]
TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
OLLYSTACK = ("topics", "migrate", "gateway", "worker", "api")
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|KEYS$")
# Stand-ins for the secrets a user exports before `docker compose up`.
USER_ENV = {"CLICKHOUSE_PASSWORD": "s3cret", "GRAFANA_ADMIN_PASSWORD": "s3cret",
            "ALERTMANAGER_WEBHOOK_URL": "http://hooks.example/x"}


def environment(service: str) -> dict[str, Any]:
    env = SERVICES[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment as a mapping, so it can be checked"
    return env


def test_the_deployment_has_every_part() -> None:
    assert set(SERVICES) == {"kafka", "clickhouse", *OLLYSTACK, "alertmanager", "prometheus", "grafana"}
    for stateful in ("kafka", "clickhouse", "alertmanager", "prometheus", "grafana"):
        assert any(not str(v).startswith(("./", "/")) for v in SERVICES[stateful]["volumes"]), f"{stateful}: no volume"
        assert SERVICES[stateful]["healthcheck"]["test"], f"{stateful}: no health check"
    for one_shot in ("topics", "migrate"):
        assert SERVICES[one_shot]["restart"] == "no"
    assert SERVICES["topics"]["command"] == ["ollystack", "topics", "create"]
    assert SERVICES["migrate"]["command"] == ["ollystack", "migrate"]
    for role in ("gateway", "worker", "api"):
        assert SERVICES[role]["command"] == ["ollystack", role]
        assert all(d["condition"] == "service_completed_successfully" for d in SERVICES[role]["depends_on"].values())
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "grafana-clickhouse-datasource" in SERVICES["grafana"]["environment"]["GF_PLUGINS_PREINSTALL"]


@pytest.mark.parametrize("service", OLLYSTACK)
def test_every_ollystack_variable_is_a_setting_with_a_valid_value(service: str) -> None:
    env = environment(service)
    names = {name for name in env if name.startswith("OLLYSTACK_")}
    assert names and names <= setting_env_names(), f"not settings: {sorted(names - setting_env_names())}"
    set_here = {name: interpolate(str(value), USER_ENV) for name, value in env.items() if value is not None}
    settings = load_settings(environ=set_here)  # ConfigError names any value a setting refuses
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.clickhouse.url.get_secret_value() == "clickhouse://default:s3cret@clickhouse:9000/default"
    assert settings.score.alertmanager_url == "http://alertmanager:9093"


def test_no_variable_of_the_file_pretends_to_be_a_setting() -> None:
    # ${...} names are the user's own variables; an OLLYSTACK_ one would read as a setting.
    assert not {name for name in interpolated_names(TEXT) if name.startswith("OLLYSTACK_")}


def test_secrets_come_from_the_environment() -> None:
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET.search(key) or key.endswith("_URL") and "@" in str(value):
                # Passed through (no value) or interpolated: never a literal in the file.
                assert value is None or interpolated_names(str(value)), f"{name}: {key} is written in the file"
                if key.endswith("_URL") and value is not None:  # its password is the user's variable
                    assert urlsplit(interpolate(str(value), USER_ENV)).password == "s3cret", f"{name}: {key}"
    with pytest.raises(KeyError, match="CLICKHOUSE_PASSWORD"):
        interpolate(str(environment("api")["OLLYSTACK_CLICKHOUSE_URL"]), {})
    assert COMPOSE["secrets"]["alertmanager_webhook_url"] == {"environment": "ALERTMANAGER_WEBHOOK_URL"}


def test_every_mounted_file_exists() -> None:
    mounts = [(name, str(v).split(":")[0]) for name, s in SERVICES.items() for v in s.get("volumes", [])]
    binds = [(name, source) for name, source in mounts if source.startswith(("./", "/"))]
    assert binds, "compose.yaml mounts nothing from the repository"
    missing = [f"{name}: {source}" for name, source in binds if not (ROOT / source).exists()]
    assert not missing, f"mounted but not in the repository: {missing}"
    assert (ROOT / "Dockerfile").is_file()


def test_alertmanager_runs_the_shipped_config_at_the_tested_version() -> None:
    am = SERVICES["alertmanager"]
    assert "./ops/alertmanager:/etc/alertmanager:ro" in am["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    shipped = yaml.safe_load((ROOT / "ops" / "alertmanager" / "alertmanager.yml").read_text())
    url_files = {hook["url_file"] for r in shipped["receivers"] for hook in r["webhook_configs"]}
    assert url_files == {"/run/secrets/alertmanager_webhook_url"} and am["secrets"] == ["alertmanager_webhook_url"]
    tested = re.search(r"^ALERTMANAGER_VERSION=(\S+)$", (ROOT / "ops" / "tools" / "fetch").read_text(), re.M)
    assert tested and am["image"] == f"prom/alertmanager:{tested.group(1)}"


def test_prometheus_scrapes_every_process() -> None:
    [config_mount] = [v for v in SERVICES["prometheus"]["volumes"] if str(v).startswith("./")]
    config = yaml.safe_load((ROOT / config_mount.split(":")[0]).read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    ports = {"gateway": "4318", "worker": "9464", "api": "8080"}
    assert {f"{role}:{port}" for role, port in ports.items()} <= targets
    for role, port in ports.items():
        exposed = [str(p).split(":")[-1] for p in SERVICES[role].get("ports", []) + SERVICES[role].get("expose", [])]
        assert port in exposed, f"{role} does not expose its metrics port {port}"
