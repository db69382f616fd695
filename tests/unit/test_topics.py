"""config/topics.yaml as the cluster should have it, and how drift is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.base import ChannelName
from streams.core.errors import TopicsError
from streams.core.topics import TopicSpec, load_topics
from streams.ops.topic_admin import ExistingTopic, drift, fit_to_cluster
from tests.factories import ROOT

TOPICS = ROOT / "config" / "topics.yaml"


def test_every_topic_of_the_pipeline_is_declared() -> None:
    topics = load_topics(TOPICS, prefix="staging.")
    names = {spec.name for spec in topics.all()}
    assert topics.dead_letter == "staging.notify.dlq"
    assert topics.dead_letter in names
    assert topics.outcomes in names
    assert topics.settings in names
    assert all(topics.send_topic(channel) in names for channel in ChannelName)
    tier = topics.spec.retry.tiers[0]
    assert topics.retry_topic(ChannelName.WECHAT_OA, tier) == "staging.notify.retry.wechat_oa.10s"
    assert topics.event_topic_for("payment.succeeded") == "staging.mall.payments"
    assert len(names) == len(topics.all()), "no topic declared twice"


def test_defaults_fill_in_and_compaction_is_kept() -> None:
    specs = {spec.name: spec for spec in load_topics(TOPICS).all()}
    assert specs["notify.settings"].config["cleanup.policy"] == "compact"
    assert specs["notify.dlq"].replication_factor == 3
    assert specs["notify.dlq"].config["min.insync.replicas"] == "2"


def test_replication_is_capped_to_a_single_broker_with_a_note() -> None:
    spec = TopicSpec(name="t", partitions=3, replication_factor=3, config={"min.insync.replicas": "2"})
    fitted, note = fit_to_cluster(spec, brokers=1)
    assert fitted.replication_factor == 1
    assert fitted.config["min.insync.replicas"] == "1"
    assert "capped to 1" in note
    assert fit_to_cluster(spec, brokers=3) == (spec, "")


def test_drift_names_each_difference() -> None:
    spec = TopicSpec(name="t", partitions=6, replication_factor=1, config={"retention.ms": "1000"})
    existing = ExistingTopic("t", partitions=3, replication_factor=1, config={"retention.ms": "5000"})
    assert drift(spec, existing) == ["partitions 3, want 6", "retention.ms=5000, want 1000"]
    assert drift(spec, ExistingTopic("t", 6, 1, {"retention.ms": "1000", "other": "x"})) == []


def test_a_bad_topics_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(TOPICS.read_text().replace("partitions: 6", "partitions: 0", 1))
    with pytest.raises(
        TopicsError, match=r"events\.0\.partitions: Input should be greater than or equal to 1"
    ):
        load_topics(path)
