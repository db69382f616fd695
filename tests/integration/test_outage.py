"""A Kafka outage in the middle of a stream, on a broker of this test's own (the session's broker
keeps serving the other tests): the worker shows it, says so in a few log lines, loses and repeats
nothing, and carries on by itself when the broker is back, receipts pairing again. A stop during
an outage still ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core.topics import Topics, load_topics
from streams.devtools.demo import Settlement, source_of
from streams.devtools.local_stack import config_with_tiers, free_port, running_stack
from streams.devtools.upstream import publish_values
from streams.ops.reading import ReadRecord, end_offsets, read_until
from streams.ops.shop_store import save_sample_shops
from streams.ops.topic_admin import ensure_topics
from tests.conftest import KAFKA_SCRIPT
from tests.factories import ROOT, payment_event, to_bytes

RECEIPTS = {"reached", "not_reached"}
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("java") and shutil.which("mvn")),
        reason="needs Java and Maven for a broker of its own",
    ),
]
OUTAGE_SECONDS = 12
EVENTS = 600  # ~6 s at the default 100 sends/s per WeChat app: the outage comes mid-stream


class Broker:
    def __init__(self, directory: Path) -> None:
        self.env = {**os.environ, "KAFKA_LOCAL_DIR": str(directory), "KAFKA_LOCAL_PORT": str(free_port())}

    def run(self, action: str) -> str:
        done = subprocess.run(
            [KAFKA_SCRIPT, action], env=self.env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def readiness(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def wait_for_status(url: str, status: int, seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        code, body = readiness(url)
        if code == status:
            return body
        assert time.monotonic() < deadline, f"/readyz did not answer {status} in {seconds:.0f} s: {body}"
        time.sleep(0.5)


def test_a_broker_stopped_for_12_s_loses_nothing_and_needs_no_worker_restart(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "kafka")
    bootstrap = broker.run("up").splitlines()[-1]
    try:
        config = config_with_tiers(tmp_path / "config", (1, 2, 3))
        topics = load_topics(config / "topics.yaml", "outage.")
        ensure_topics(bootstrap, topics.all())
        save_sample_shops(bootstrap, topics, config)
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MALL_NOTIFY_TOPIC_PREFIX": "outage.",
            "MALL_NOTIFY_CONFIG_DIR": str(config),
            "MALL_NOTIFY_STALL_SECONDS": "10",
            "MALL_NOTIFY_SHUTDOWN_GRACE_SECONDS": "5",
        }
        with running_stack(tmp_path / "stack", env) as (_, worker):
            start = end_offsets(bootstrap, topics.outcomes)
            published = publish_values(bootstrap, topics, [to_bytes(payment_event()) for _ in range(EVENTS)])
            read_until(bootstrap, topics.outcomes, start, lambda rs: len(rs) >= EVENTS // 6, 60)

            broker.run("down")
            stopped = time.monotonic()
            lines_before = len(worker.log_path.read_text().splitlines())
            not_ready = wait_for_status(worker.url, 503, OUTAGE_SECONDS)
            assert not_ready["kafka_reachable"] is False
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
            lines_during = len(worker.log_path.read_text().splitlines()) - lines_before
            broker.run("up")

            records = read_until(bootstrap, topics.outcomes, start, Settlement(published), 180)
            assert Settlement(published)(records), "events without an outcome after the outage"
            outcomes = [orjson.loads(r.value or b"") for r in records]
            outcomes = [o for o in outcomes if o["status"] not in RECEIPTS]  # receipts come on top
            per_key = Counter(o["delivery_id"] for o in outcomes)
            assert len(per_key) == EVENTS
            assert set(per_key.values()) == {1}, "an outcome written twice"
            assert {o["status"] for o in outcomes} == {"delivered"}
            wait_for_status(worker.url, 200, 60)
            assert worker.process.poll() is None, "the worker carried on without a restart"
            assert lines_during < 100, f"{lines_during} log lines in a {OUTAGE_SECONDS} s outage"
            _receipts_pair(bootstrap, topics)

            broker.run("down")
            worker.process.send_signal(signal.SIGTERM)
            try:
                worker.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail("the worker did not stop on the first SIGTERM during an outage")
    finally:
        broker.run("down")


def _receipts_pair(bootstrap: str, topics: Topics) -> None:
    """The receipts endpoint and lane live through the outage: what is delivered after it gets
    its receipt (the sandbox pushes one for each message) paired with it."""
    start = end_offsets(bootstrap, topics.outcomes)
    published = publish_values(bootstrap, topics, [to_bytes(payment_event()) for _ in range(20)])
    sources = {source_of(p) for p in published}

    def paired(records: list[ReadRecord]) -> bool:
        outcomes = [orjson.loads(r.value or b"") for r in records]
        delivered = {
            o["delivery_id"] for o in outcomes if o["status"] == "delivered" and _source(o) in sources
        }
        reached = {o["delivery_id"] for o in outcomes if o["status"] in RECEIPTS}
        return len(delivered) >= len(published) and delivered <= reached

    records = read_until(bootstrap, topics.outcomes, start, paired, 90)
    assert paired(records), "deliveries after the broker came back got no receipt"


def _source(outcome: dict[str, Any]) -> str:
    return "{topic}[{partition}]@{offset}".format(**outcome["source"])


def _healthz(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return 0  # not listening yet


def _wait_for_healthz(url: str, status: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _healthz(url) != status:
        assert time.monotonic() < deadline, f"/healthz did not answer {status} in {seconds:.0f} s"
        time.sleep(0.3)


def test_the_admin_api_started_before_kafka_recovers_when_it_comes_and_stops_on_one_sigterm(
    tmp_path: Path,
) -> None:
    broker = Broker(tmp_path / "kafka")
    bootstrap = f"127.0.0.1:{broker.env['KAFKA_LOCAL_PORT']}"
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log_file:
        api = subprocess.Popen(
            [sys.executable, "-m", "streams", "api"],
            env={
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "MALL_NOTIFY_API_HOST": "0.0.0.0",
                "MALL_NOTIFY_API_PORT": str(port),
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_healthz(url, 503, 30)  # up, and saying it is not ready: Kafka is not there
        broker.run("up")
        ensure_topics(bootstrap, load_topics(ROOT / "config" / "topics.yaml").all())
        _wait_for_healthz(url, 200, 60)
        api.send_signal(signal.SIGTERM)
        assert api.wait(15) == 0
    finally:
        if api.poll() is None:
            api.kill()
        broker.run("down")
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    messages = [line["message"] for line in log]
    assert "admin API listening" in messages
    assert any(m.startswith("the admin API listens beyond this machine") for m in messages)
    assert any(m.startswith("no API tokens configured") for m in messages)
    assert not [line for line in log if line["level"] == "ERROR"], "waiting for Kafka is no error"
