"""The alert rules: valid for Prometheus, each shown firing (and the known false alarms not firing)
by promtool unit tests, each with a runbook, and only about metrics the worker exports, whose
names follow Prometheus' conventions."""

from __future__ import annotations

import re
import subprocess

import yaml
from prometheus_client import REGISTRY, generate_latest

import streams.runtime.metrics  # noqa: F401 - registers the metrics
from tests.factories import ROOT
from tests.tools import prometheus_tool

RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"


def _rules() -> list[dict[str, str]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prometheus_tool("promtool")), *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_rule_is_shown_firing_by_a_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in _rules()} == fired


def test_every_rule_has_a_runbook_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "OPERATIONS.md").read_text()
    headings = {heading.lower() for heading in re.findall(r"^#+ (\w+)$", guide, re.MULTILINE)}
    for rule in _rules():
        assert rule["annotations"]["runbook_url"] == f"docs/OPERATIONS.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in headings, f"no runbook section for {rule['alert']}"


def test_alert_rules_use_exported_metrics() -> None:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    exported = {
        metric.name + suffix for metric in REGISTRY.collect() for suffix in suffixes.get(metric.type, [])
    }
    named = {name for rule in _rules() for name in re.findall(r"\bmall_notify_\w+", rule["expr"])}
    assert named, "the rules watch mall-notify metrics"
    assert named <= exported, f"unknown metrics in alerts: {sorted(named - exported)}"


def test_the_metrics_follow_prometheus_naming_conventions() -> None:
    linted = _promtool("check", "metrics", stdin=generate_latest(REGISTRY))
    assert linted.returncode == 0, linted.stdout + linted.stderr
