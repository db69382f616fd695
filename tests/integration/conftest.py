"""One real pipeline per test session: the session's Kafka broker, the sandbox and a worker.

Topics get a per-session prefix so that runs never see each other's records.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.core.mp_subscriptions import answered_event, answers_of
from streams.core.outcomes import FINAL_STATUSES, Outcome
from streams.core.topics import Topics, load_topics
from streams.devtools.demo import Settlement, group_outcomes, source_of
from streams.devtools.local_stack import (
    Service,
    config_with_tiers,
    running_stack,
    sandbox_channel_env,
    start_worker,
)
from streams.devtools.upstream import Published, publish_values
from streams.ops.reading import ReadRecord, end_offsets, read_until
from streams.ops.shop_store import save_sample_shops
from streams.ops.topic_admin import ensure_topics
from streams.runtime.clock import mall_time, set_clock
from streams.settings import PROJECT_ROOT
from tests.factories import DEMO_SHOP, MP_OPENID

SETTLE_SECONDS = 60.0


PLATFORM_TOKEN = "platform-token-for-tests"
RECIPIENT_KEY = "recipient-key-for-the-tests-0001"
SECRETS_KEYS = "t1:" + base64.b64encode(b"secrets-key-of-the-tests-32bytes").decode()
"""what the merchants' AppSecrets registered in the tests are sealed with"""


@dataclass
class Pipeline:
    bootstrap: str
    topics: Topics
    sandbox: Service
    worker: Service
    worker_env: dict[str, str]
    log_dir: Path

    @property
    def clock_file(self) -> Path:
        return Path(self.worker_env["MALL_NOTIFY_CLOCK_FILE"])

    def set_clock(self, at: datetime) -> None:
        """Move the clock of the worker's buyers and deferred lanes (quiet hours) to say ``at`` now."""
        set_clock(self.clock_file, at)

    def restart_worker(self, sig: int) -> None:
        """Stop the worker with ``sig`` (SIGKILL: a crash) and start a new one in its place."""
        self.worker.stop(sig)
        self.worker = start_worker(self.log_dir, self.worker_env, name=f"worker-{uuid.uuid4().hex[:4]}")

    def add_fault(self, **fault: object) -> None:
        self.tell_sandbox("faults", fault)

    def tell_sandbox(self, path: str, body: dict[str, object]) -> None:
        """POST to the sandbox's inspection API (``/__sandbox__/<path>``): faults, grants..."""
        request = urllib.request.Request(
            f"{self.sandbox.url}/__sandbox__/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def sandbox_requests(self, path: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(
            f"{self.sandbox.url}/__sandbox__/requests?path={path}", timeout=5
        ) as reply:
            calls: list[dict[str, Any]] = json.load(reply)
            return calls

    def publish(self, values: list[bytes], **producer_config: object) -> list[Published]:
        return publish_values(self.bootstrap, self.topics, values, **producer_config)

    def run(
        self, values: list[bytes], **producer_config: object
    ) -> tuple[list[Published], dict[str, list[Outcome]]]:
        """Publish ``values`` and wait until each has its final outcome(s); outcomes by event source."""
        start = end_offsets(self.bootstrap, self.topics.outcomes)
        published = self.publish(values, **producer_config)
        records = read_until(
            self.bootstrap, self.topics.outcomes, start, Settlement(published), SETTLE_SECONDS
        )
        grouped = group_outcomes(records)
        finals = {
            source: [o for o in found if o.status in FINAL_STATUSES] for source, found in grouped.items()
        }
        return published, {source_of(p): finals.get(source_of(p), []) for p in published}

    def dead_letters_from(self, start: dict[int, int], count: int) -> list[ReadRecord]:
        return read_until(
            self.bootstrap, self.topics.dead_letter, start, lambda rs: len(rs) >= count, SETTLE_SECONDS
        )

    def outcomes_from(self, start: dict[int, int], wanted: Callable[[Outcome], bool]) -> list[ReadRecord]:
        """Outcome records written after ``start`` that ``wanted`` picks, once there is one."""

        def picked(records: list[ReadRecord]) -> list[ReadRecord]:
            return [r for r in records if wanted(Outcome.model_validate_json(r.value))]

        return picked(
            read_until(
                self.bootstrap, self.topics.outcomes, start, lambda rs: bool(picked(rs)), SETTLE_SECONDS
            )
        )

    def wait_for_metric_above(self, name: str, before: float, timeout: float = 30.0) -> None:
        """Wait until the worker's counter ``name`` (summed over labels) is above ``before``."""
        deadline = time.monotonic() + timeout
        while self.metric_total(name) <= before:
            assert time.monotonic() < deadline, f"{name} did not increase"
            time.sleep(0.2)

    def metric_total(self, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in self.metrics().splitlines()
            if line.startswith((name + "{", name + " "))
        )

    def sandbox_messages(self, channel: str = "") -> list[dict[str, Any]]:
        return self.sandbox_get(f"messages?channel={channel}" if channel else "messages")

    def sandbox_get(self, path: str) -> list[dict[str, Any]]:
        """What the sandbox's inspection API (``/__sandbox__/<path>``) lists."""
        with urllib.request.urlopen(f"{self.sandbox.url}/__sandbox__/{path}", timeout=5) as response:
            listed: list[dict[str, Any]] = json.load(response)
            return listed

    def mp_accepts(
        self,
        template_ids: list[str],
        times: int = 1,
        openid: str = MP_OPENID,
        long_term: bool = False,
        shop: int = DEMO_SHOP,
    ) -> None:
        """The buyer accepts the Mini Program's templates on its subscription panel ``times`` times,
        as the mall's backend tells the pipeline; returns once each answer is recorded."""
        now = datetime.now(UTC)
        answered = answers_of(openid, dict.fromkeys(template_ids, "accept"), now, long_term)
        values = [answered_event(shop, answered, "/mall/test", now)[1] for _ in range(times)]
        _, outcomes = self.run(values)
        reasons = [o.reason for found in outcomes.values() for o in found]
        assert all(reason.startswith("mp_subscription_answered") for reason in reasons), reasons

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.worker.url}/metrics", timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture(scope="session")
def session_prefix() -> str:
    return f"it{uuid.uuid4().hex[:8]}."


@pytest.fixture(scope="session")
def pipeline(
    kafka_bootstrap: str, database_url: str, session_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    config = config_with_tiers(tmp_path_factory.mktemp("config") / "config", (1, 2, 3))
    stack = tmp_path_factory.mktemp("stack")
    with pipeline_on(kafka_bootstrap, session_prefix, config, stack, database_url) as running:
        yield running


@contextmanager
def pipeline_on(
    kafka_bootstrap: str, prefix: str, config: Path, log_dir: Path, database_url: str | None = None
) -> Iterator[Pipeline]:
    """Topics under ``prefix`` with the sample shops, and a stack (receipts endpoint, sandbox,
    worker) of its own writing its logs to ``log_dir``."""
    topics = load_topics(config / "topics.yaml", prefix)
    ensure_topics(kafka_bootstrap, topics.all())
    clock = log_dir / "clock.json"
    set_clock(clock, mall_time("12:00"))  # the buyers' day, whenever the tests run; quiet-hours tests move it
    save_sample_shops(kafka_bootstrap, topics, config, key=RECIPIENT_KEY.encode())
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MALL_NOTIFY_TOPIC_PREFIX": prefix,
        "MALL_NOTIFY_CONFIG_DIR": str(config),
        "MALL_NOTIFY_KAFKA_SESSION_TIMEOUT": "6",
        "MALL_NOTIFY_API_PLATFORM_TOKEN": PLATFORM_TOKEN,  # the worker's shop pages want it
        "MALL_NOTIFY_RECIPIENT_KEY": RECIPIENT_KEY,
        "MALL_NOTIFY_SECRETS_KEYS": SECRETS_KEYS,
        "MALL_NOTIFY_SMS_REPORT_WAIT_SECONDS": "3",  # a lost SMS report is asked about soon
        "MALL_NOTIFY_SMS_REPORT_CHECK_SECONDS": "1",
        "MALL_NOTIFY_WEBHOOK_DISABLE_AFTER_SECONDS": "2",  # a failing endpoint is switched off soon
        "MALL_NOTIFY_SMS_REVIEW_POLL_SECONDS": "2",  # Aliyun's reviews asked about soon
        "MALL_NOTIFY_CLOCK_FILE": str(clock),
    } | ({"MALL_NOTIFY_DATABASE_URL": database_url} if database_url else {})
    with running_stack(log_dir, env) as (sandbox, worker):
        pipeline = Pipeline(
            kafka_bootstrap, topics, sandbox, worker, {**sandbox_channel_env(sandbox.url), **env}, log_dir
        )
        yield pipeline
        pipeline.worker.stop()
        # every request the clients made in these tests kept the providers' documented contract,
        # and so did every answer of the sandbox (tests/contracts: the sandbox judges both)
        broken = pipeline.sandbox_get("contract-breaches")
        assert not broken, f"{len(broken)} calls broke their contract (tests/contracts): {broken[:5]}"


@pytest.fixture(scope="module")
def api(pipeline: Pipeline) -> Iterator[Service]:
    """The admin API of a test module (see :mod:`tests.integration.admin`)."""
    from tests.integration.admin import running_api  # admin imports this module

    with running_api(pipeline) as service:
        yield service


def run_cli(
    pipeline: Pipeline, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """A command as an operator runs it against the pipeline, without a terminal: nothing can be
    asked interactively."""
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        cwd=PROJECT_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **pipeline.worker_env, **(env or {})},
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must succeed."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
