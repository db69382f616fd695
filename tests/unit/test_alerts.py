"""The shipped alert rules only name metrics the worker really exports."""

from __future__ import annotations

import re

import yaml
from prometheus_client import REGISTRY

import streams.runtime.metrics  # noqa: F401 - registers the metrics
from tests.factories import ROOT


def test_alert_rules_use_exported_metrics() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())["groups"][0]["rules"]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    exported = {
        metric.name + suffix for metric in REGISTRY.collect() for suffix in suffixes.get(metric.type, [])
    }
    named = {name for rule in rules for name in re.findall(r"\bmall_notify_\w+", rule["expr"])}
    assert named, "the rules watch mall-notify metrics"
    assert named <= exported, f"unknown metrics in alerts: {sorted(named - exported)}"
