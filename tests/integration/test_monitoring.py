"""The monitoring kit against a running worker: a real Prometheus loads the shipped scrape
configuration and alert rules, scrapes the worker, and runs every query of the Grafana
dashboard; the key panels have data."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from streams.devtools.local_stack import free_port
from tests.factories import ROOT, payment_event, to_bytes
from tests.integration.conftest import Pipeline
from tests.tools import prometheus_tool

pytestmark = pytest.mark.integration
DASHBOARD = ROOT / "deploy" / "grafana" / "mall-notify.json"
WITH_DATA = {"Events in", "Outcomes", "Sends by channel and result", "Workers ready and Kafka reachable"}


@pytest.fixture(scope="module")
def prometheus(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus with deploy/prometheus/ as shipped, pointed at the test's worker, scraping every second."""
    directory = tmp_path_factory.mktemp("prometheus")
    shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yaml", directory / "alerts.yaml")
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    [job] = config["scrape_configs"]
    job["static_configs"][0]["targets"] = [pipeline.worker.url.removeprefix("http://")]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [
            str(prometheus_tool("prometheus")),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={url.removeprefix('http://')}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "prometheus.log").open("wb"),
    )
    try:
        yield url
    finally:
        server.terminate()
        server.wait(20)


def _api(url: str, path: str, **query: str) -> Any:
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{urllib.parse.urlencode(query)}", timeout=10) as reply:
        answer = json.load(reply)
    assert answer["status"] == "success", answer
    return answer["data"]


def _until(what: str, check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except OSError:  # not listening yet
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _targets() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_prometheus_scrapes_the_worker_with_the_shipped_config_and_rules(
    pipeline: Pipeline, prometheus: str
) -> None:
    up = _until(
        "the worker scraped", lambda: _api(prometheus, "query", query='up{app="mall-notify"} == 1')["result"]
    )
    assert up[0]["metric"]["job"] == "mall-notify"
    rules = _api(prometheus, "rules")["groups"]
    loaded = [rule for group in rules for rule in group["rules"]]
    assert len(loaded) == len(
        yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())["groups"][0]["rules"]
    )
    assert all(rule["health"] == "ok" for rule in loaded), [r for r in loaded if r["health"] != "ok"]


def test_every_dashboard_query_runs_and_the_key_panels_have_data(pipeline: Pipeline, prometheus: str) -> None:
    pipeline.run([to_bytes(payment_event())])
    _until(
        "the worker scraped", lambda: _api(prometheus, "query", query='up{app="mall-notify"} == 1')["result"]
    )
    time.sleep(3)  # a few scrapes after the event, for rates
    empty = []
    for title, expr in _targets():
        query = expr.replace("$__rate_interval", "1m")
        result = _until(f"'{title}' answered", lambda q=query: _api(prometheus, "query", query=q), 10)
        if title in WITH_DATA and not result["result"]:
            empty.append(title)
    assert not empty, f"panels without data after an event went through: {empty}"
    assert {title for title, _ in _targets()} >= WITH_DATA


def test_the_dashboard_is_a_grafana_dashboard_with_a_datasource_choice() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "mall-notify"
    assert [v["type"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["targets"], panel["title"]
