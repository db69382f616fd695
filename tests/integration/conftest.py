"""One real pipeline per test session: the session's Kafka broker, the sandbox and a worker.

Topics get a per-session prefix so that runs never see each other's records.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streams.admin import ensure_topics
from streams.demo import all_settled, group_outcomes, source_of
from streams.local_stack import Service, running_stack
from streams.outcomes import Outcome
from streams.publish import Published, publish_values
from streams.reading import ReadRecord, end_offsets, read_until
from streams.topics import Topics, load_topics
from tests.factories import ROOT

SETTLE_SECONDS = 60.0


@dataclass
class Pipeline:
    bootstrap: str
    topics: Topics
    sandbox: Service
    worker: Service

    def publish(self, values: list[bytes]) -> list[Published]:
        return publish_values(self.bootstrap, self.topics, values)

    def run(self, values: list[bytes]) -> tuple[list[Published], dict[str, list[Outcome]]]:
        """Publish ``values`` and wait until each has its final outcome(s); outcomes by event source."""
        start = end_offsets(self.bootstrap, self.topics.outcomes)
        published = self.publish(values)
        records = read_until(
            self.bootstrap, self.topics.outcomes, start, lambda rs: all_settled(published, rs), SETTLE_SECONDS
        )
        grouped = group_outcomes(records)
        return published, {source_of(p): grouped.get(source_of(p), []) for p in published}

    def dead_letters_from(self, start: dict[int, int], count: int) -> list[ReadRecord]:
        return read_until(
            self.bootstrap, self.topics.dead_letter, start, lambda rs: len(rs) >= count, SETTLE_SECONDS
        )

    def sandbox_messages(self, channel: str = "") -> list[dict[str, Any]]:
        query = f"?channel={channel}" if channel else ""
        with urllib.request.urlopen(f"{self.sandbox.url}/__sandbox__/messages{query}", timeout=5) as response:
            messages: list[dict[str, Any]] = json.load(response)
            return messages

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.worker.url}/metrics", timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture(scope="session")
def session_prefix() -> str:
    return f"it{uuid.uuid4().hex[:8]}."


@pytest.fixture(scope="session")
def pipeline(
    kafka_bootstrap: str, session_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    topics = load_topics(ROOT / "config" / "topics.yaml", session_prefix)
    ensure_topics(kafka_bootstrap, topics.all())
    log_dir: Path = tmp_path_factory.mktemp("stack")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MALL_NOTIFY_TOPIC_PREFIX": session_prefix}
    with running_stack(log_dir, env) as (sandbox, worker):
        yield Pipeline(kafka_bootstrap, topics, sandbox, worker)
