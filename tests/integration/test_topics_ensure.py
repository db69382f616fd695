"""`topics ensure` against the real broker: creates what is missing, is idempotent, reports drift."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streams.core.topics import load_topics
from streams.ops.topic_admin import Action, ensure_topics
from tests.factories import ROOT

pytestmark = pytest.mark.integration


def test_ensure_creates_then_finds_everything_in_place(kafka_bootstrap: str) -> None:
    topics = load_topics(ROOT / "config" / "topics.yaml", f"ens{uuid.uuid4().hex[:6]}.")
    first = ensure_topics(kafka_bootstrap, topics.all())
    second = ensure_topics(kafka_bootstrap, topics.all())
    assert {report.action for report in first} == {Action.CREATED}
    assert {report.action for report in second} == {Action.OK}
    assert len(first) == len(topics.all())


def test_a_topic_with_the_wrong_partition_count_is_reported(kafka_bootstrap: str) -> None:
    prefix = f"drift{uuid.uuid4().hex[:6]}."
    topics = load_topics(ROOT / "config" / "topics.yaml", prefix)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    wrong = NewTopic(topics.dead_letter, num_partitions=1, replication_factor=1)
    admin.create_topics([wrong])[topics.dead_letter].result(30)
    reports = {report.topic: report for report in ensure_topics(kafka_bootstrap, topics.all())}
    assert reports[topics.dead_letter].action is Action.DRIFT
    assert "partitions 1, want 3" in reports[topics.dead_letter].detail
    assert "retention.ms" in reports[topics.dead_letter].detail
    assert reports[topics.outcomes].action is Action.CREATED
