"""The deployment kit: Kubernetes manifests valid against pinned schemas (core API, Strimzi, KEDA,
Prometheus Operator), the generated ones equal to what the project's data generates, and the
Docker and compose files consistent with the code (settings that exist, files that exist)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from streams.core.topics import load_topics
from streams.ops.k8s_export import as_yaml, prometheus_rule, strimzi_topics
from streams.settings import Settings
from tests.factories import ROOT

K8S = ROOT / "deploy" / "k8s"
CHECK = K8S / "validate"
VARIABLES = {
    (str(field.validation_alias.choices[0]) if field.validation_alias else f"MALL_NOTIFY_{name.upper()}")
    for name, field in Settings.model_fields.items()
}


def test_the_kafka_topics_are_generated_from_topics_yaml() -> None:
    specs = load_topics(ROOT / "config" / "topics.yaml").all()
    expected = as_yaml(strimzi_topics(specs, "mall-kafka"), "topics export --strimzi")
    assert (K8S / "kafka-topics.yaml").read_text() == expected, (
        "stale: mall-notify topics export --strimzi > deploy/k8s/kafka-topics.yaml"
    )
    names = [spec.name for spec in specs]
    topics = [doc["spec"]["topicName"] for doc in yaml.safe_load_all((K8S / "kafka-topics.yaml").read_text())]
    assert topics == names


def test_the_prometheus_rule_is_generated_from_alerts_yaml() -> None:
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    expected = as_yaml([prometheus_rule(alerts)], "alerts export --prometheus-rule")
    assert (K8S / "prometheus-rule.yaml").read_text() == expected, (
        "stale: mall-notify alerts export --prometheus-rule > deploy/k8s/prometheus-rule.yaml"
    )


def test_every_manifest_is_valid_against_the_pinned_schemas() -> None:
    node = shutil.which("node")
    if node is None or not (CHECK / "node_modules").exists():
        pytest.fail("the manifest check is not installed: make tools (make test does)")
    files = sorted(str(path) for path in K8S.glob("*.yaml"))
    result = subprocess.run(
        [node, str(CHECK / "validate.mjs"), *files], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {line.split(": ")[1].split()[0] for line in result.stdout.splitlines()}
    assert kinds == {"Service", "StatefulSet", "KafkaTopic", "ScaledObject", "PodMonitor", "PrometheusRule"}


def test_the_manifest_check_refuses_what_kubernetes_would(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata: {name: t}\n"
        "spec: {partitions: six}\n"
    )
    result = subprocess.run(
        [node, str(CHECK / "validate.mjs"), str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "partitions must be integer" in result.stdout


def _environment_names(text: str) -> set[str]:
    return set(re.findall(r"\b((?:MALL_NOTIFY_|KAFKA_BOOTSTRAP_)[A-Z_]+)\b", text))


def test_the_manifests_and_compose_set_only_settings_that_exist() -> None:
    for path in [
        K8S / "worker-statefulset.yaml",
        ROOT / "deploy" / "compose.yaml",
        ROOT / "deploy" / "docker" / "Dockerfile",
    ]:
        unknown = _environment_names(path.read_text()) - VARIABLES
        assert not unknown, f"{path.name} sets unknown settings: {sorted(unknown)}"


def test_compose_refers_to_files_and_services_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert (ROOT / "deploy" / build["context"] / build["dockerfile"]).exists(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            named = source in compose.get("volumes", {})
            assert named or (ROOT / "deploy" / source).exists(), f"{name}: {volume}"
        depends = service.get("depends_on", [])
        assert set(depends) <= set(services), f"{name} depends on {depends}"
    shipped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    composed = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").read_text())
    for config in (shipped, composed):
        config["scrape_configs"][0]["static_configs"][0]["targets"] = []
    assert shipped == composed, "prometheus.compose.yml differs from prometheus.yml beyond its targets"


def test_the_image_runs_as_a_user_with_a_health_check_and_copies_what_exists() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users, "the image names its user"
    assert not users[-1].startswith(("root", "0")), "the image must not run as root"
    assert re.search(r"^HEALTHCHECK .*readyz", dockerfile, re.MULTILINE | re.DOTALL)
    sources = [
        line.split()[1]
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from" not in line
    ]
    for source in sources:
        assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".local", ".git"} <= set(ignored)
