"""deploy/helm/ollystack through the real helm (built by ops/tools/fetch): it lints, renders
manifests valid against the Kubernetes schemas (kubernetes-validate, which ships them), and
its settings are real OLLYSTACK_* settings with values the settings model accepts."""
from __future__ import annotations

import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.errors import ConfigError
from core.settings import load_settings
from tests.support.deployment import setting_env_names
from tests.support.tools import ROOT, tool_binary

CHART = ROOT / "deploy" / "helm" / "ollystack"
URL = "clickhouse://ollystack:s3cret@ch-1:9000/otel"
VALUES = ["--set-string", f"clickhouse.url={URL}", "--set", "kafka.bootstrap=kafka-0:9092\\,kafka-1:9092",
          "--set-string", "secrets.apiKeys=k1=acme:admin", "--set-string", "apiUrl=https://olly.example",
          "--set-string", "settings.OLLYSTACK_SCORE_THRESHOLD=7.5"]
# The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBERNETES = ["1.25.0", "1.37.0"]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool_binary("helm")), *args], capture_output=True, text=True, check=False,  # noqa: S603
                          timeout=60)


def render(*values: str) -> list[dict[str, Any]]:
    done = helm("template", "olly", str(CHART), *values)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render(*VALUES, "--set", "kafka.partitions=2")


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_the_chart_lints() -> None:
    done = helm("lint", "--strict", str(CHART), *VALUES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_manifest_is_valid_kubernetes(manifests: list[dict[str, Any]], version: str) -> None:
    for doc in manifests:
        # Raises ValidationError naming the field; strict: no field the schema does not know.
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_roles_their_probes_budgets_and_scaling(manifests: list[dict[str, Any]]) -> None:
    deployments = by_kind(manifests, "Deployment")
    assert set(deployments) == {"olly-ollystack-gateway", "olly-ollystack-worker", "olly-ollystack-api"}
    probes = {}
    for name, deployment in deployments.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["args"] == ["ollystack", name.rsplit("-", 1)[1]]
        probes[name.rsplit("-", 1)[1]] = (container["livenessProbe"]["httpGet"]["path"],
                                          container["readinessProbe"]["httpGet"]["path"])
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        port = annotations["prometheus.io/port"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
        assert int(port) in {p["containerPort"] for p in container["ports"]}
    assert probes == {"gateway": ("/healthz", "/healthz"), "worker": ("/healthz", "/healthz"),
                      "api": ("/healthz", "/readyz")}
    # The worker is sized by partitions (3 asked, 2 partitions); the gateway by its HPA.
    assert deployments["olly-ollystack-worker"]["spec"]["replicas"] == 2
    assert "replicas" not in deployments["olly-ollystack-gateway"]["spec"]
    [hpa] = by_kind(manifests, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "olly-ollystack-gateway"
    assert set(by_kind(manifests, "PodDisruptionBudget")) == set(deployments)
    assert set(by_kind(manifests, "Service")) == {"olly-ollystack-gateway", "olly-ollystack-api"}
    [job] = by_kind(manifests, "Job").values()
    spec = job["spec"]["template"]["spec"]
    assert [c["args"] for c in spec["initContainers"] + spec["containers"]] == [
        ["ollystack", "topics", "create"], ["ollystack", "migrate"]]


def test_the_settings_are_real_and_accepted(manifests: list[dict[str, Any]]) -> None:
    [config] = by_kind(manifests, "ConfigMap").values()
    [secret] = by_kind(manifests, "Secret").values()
    environ = {**config["data"], **secret["stringData"]}
    assert set(environ) <= setting_env_names(), f"not settings: {sorted(set(environ) - setting_env_names())}"
    assert not {"OLLYSTACK_CLICKHOUSE_URL", "OLLYSTACK_API_KEYS"} & set(config["data"]), "a credential in the ConfigMap"
    settings = load_settings(environ=environ)
    assert settings.kafka.bootstrap == "kafka-0:9092,kafka-1:9092" and settings.topics.partitions == 2
    assert settings.clickhouse.url.get_secret_value() == URL and settings.score.threshold == 7.5
    assert settings.score.api_url == "https://olly.example" and settings.host == "0.0.0.0"  # noqa: S104 - pods listen on all
    for deployment in by_kind(manifests, "Deployment").values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "olly-ollystack-settings"}},
                                        {"secretRef": {"name": "olly-ollystack-secrets"}}]


def test_a_setting_that_does_not_exist_is_caught() -> None:
    [config] = by_kind(render(*VALUES, "--set-string", "settings.OLLYSTACK_SCORE_TRESHOLD=7"), "ConfigMap").values()
    with pytest.raises(ConfigError, match="OLLYSTACK_SCORE_TRESHOLD: unknown setting"):
        load_settings(environ=config["data"])
    done = helm("template", "olly", str(CHART), *VALUES, "--set-string", "settings.SCORE_THRESHOLD=7")
    assert done.returncode != 0 and "settings.SCORE_THRESHOLD: settings are OLLYSTACK_* variables" in done.stderr


def test_external_clickhouse_is_required_and_may_come_from_your_own_secret() -> None:
    done = helm("template", "olly", str(CHART))
    assert done.returncode != 0 and "clickhouse.url is required" in done.stderr
    docs = render("--set-string", "existingSecret=olly-credentials")
    assert not by_kind(docs, "Secret")
    for deployment in by_kind(docs, "Deployment").values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": "olly-credentials"}} in container["envFrom"]
