"""What an SRE does with the command line, on the real broker: inspect dead letters whatever
their text, replay safely, read the books, publish by hand, and never create a topic by mistake."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from streams.core.failures import header_map
from streams.core.outcomes import Outcome
from streams.core.topics import load_topics
from streams.ops.reading import end_offsets
from streams.ops.topic_admin import ensure_topics
from streams.runtime.kafka.clients import admin_client
from tests.factories import ROOT, payment_event, to_bytes
from tests.integration.conftest import Pipeline, ok, run_cli

pytestmark = pytest.mark.integration
SEND = "/cgi-bin/message/template/send"


def _dead_letter_of(pipeline: Pipeline, **fields: str) -> dict[str, Any]:
    listing = json.loads(ok(run_cli(pipeline, "dlq", "list", "--json", *_options(fields))))
    return listing[-1]  # type: ignore[no-any-return]


def _options(fields: dict[str, str]) -> list[str]:
    return [part for name, value in fields.items() for part in (f"--{name.replace('_', '-')}", value)]


def test_a_dead_letter_with_markup_in_its_text_can_be_shown_as_json_and_as_text(pipeline: Pipeline) -> None:
    pipeline.add_fault(target=SEND, errcode=40037, count=1)
    goods = "[b]红[/b][x]\\[/]"
    _, outcomes = pipeline.run([to_bytes(payment_event(goods_name=goods))])
    [[failed]] = outcomes.values()
    letter = _dead_letter_of(pipeline, delivery_id=str(failed.delivery_id))

    shown = json.loads(ok(run_cli(pipeline, "dlq", "show", letter["at"], "--json")))
    assert shown["failure"]["provider_code"] == "40037"
    assert shown["headers"]["x-notify-delivery-id"] == failed.delivery_id
    assert goods in shown["value"]["delivery"]["fields"].values()
    text = ok(run_cli(pipeline, "dlq", "show", letter["at"]))
    assert json.dumps(goods, ensure_ascii=False)[1:-1] in text  # the payload as it is, markup and all


def test_a_null_record_is_dead_lettered_as_null(pipeline: Pipeline) -> None:
    start = end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter)
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    producer.produce(pipeline.topics.event_topics[0], key=b"null-record", value=None)
    assert producer.flush(10) == 0
    [letter] = [r for r in pipeline.dead_letters_from(start, 1) if r.key == b"null-record"]
    assert letter.value is None
    assert header_map(letter.headers)["x-notify-reason"] == "invalid_json"


def test_replay_asks_before_replaying_permanent_failures_and_never_picks_up_its_own_output(
    pipeline: Pipeline,
) -> None:
    pipeline.add_fault(
        target=SEND, errcode=40003, count=2
    )  # an openid of another account, still after a replay
    _, outcomes = pipeline.run([to_bytes(payment_event())])
    [[failed]] = outcomes.values()
    delivery = str(failed.delivery_id)
    first_letter = _dead_letter_of(pipeline, delivery_id=delivery)

    refused = run_cli(pipeline, "dlq", "replay", "--delivery-id", delivery)
    assert refused.returncode == 2
    assert "1 of them failed permanently (40003)" in refused.stderr
    assert "Add --yes to replay them." in refused.stderr

    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    assert "replayed 1 of 1" in ok(run_cli(pipeline, "dlq", "replay", "--delivery-id", delivery, "--yes"))
    [again] = pipeline.outcomes_from(start, lambda o: o.delivery_id == delivery)
    assert Outcome.model_validate_json(again.value or b"").status.value == "dead_lettered"

    second = _dead_letter_of(pipeline, delivery_id=delivery)
    assert second["at"] != first_letter["at"]
    assert second["failure"]["replays"] == 1
    assert second["failure"]["first_failed_at"] == first_letter["failure"]["first_failed_at"]
    assert second["failure"]["replayed_at"]
    dry = ok(run_cli(pipeline, "dlq", "replay", "--delivery-id", delivery, "--dry-run"))
    assert "would replay 1 of 1 matching dead letters" in dry
    assert "1 older letters left out" in dry


def test_a_replayed_event_keeps_when_it_first_failed(pipeline: Pipeline) -> None:
    marker = f"broken-{uuid.uuid4().hex[:8]}"
    pipeline.run([f'{{"id": "{marker}"'.encode()])
    [letter] = [
        entry
        for entry in json.loads(ok(run_cli(pipeline, "dlq", "list", "--json", "--code", "invalid_json")))
        if entry["key"] is None and marker in json.dumps(_show(pipeline, entry["at"])["value"])
    ]
    start = end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter)
    ok(run_cli(pipeline, "dlq", "replay", "--code", "invalid_json", "--since", "10m", "--yes"))
    replayed = [
        r for r in pipeline.dead_letters_from(start, 1) if marker in (r.value or b"").decode(errors="replace")
    ]
    assert replayed
    history = header_map(replayed[0].headers)
    assert history["x-notify-first-failed-at"] == letter["failure"]["first_failed_at"].replace(
        "Z", "+00:00"
    ) or (history["x-notify-first-failed-at"] == letter["failure"]["first_failed_at"])
    assert history["x-notify-replays"] == "1"
    assert "x-notify-replayed-at" in history


def _show(pipeline: Pipeline, at: str) -> dict[str, Any]:
    return json.loads(ok(run_cli(pipeline, "dlq", "show", at, "--json")))  # type: ignore[no-any-return]


def test_replay_without_a_filter_asks_first(pipeline: Pipeline) -> None:
    refused = run_cli(pipeline, "dlq", "replay")
    assert refused.returncode == 2
    assert "no filter given: replay all" in refused.stderr


def test_an_event_published_twice_is_settled_not_in_flight_forever(pipeline: Pipeline) -> None:
    event = to_bytes(payment_event())
    _, first = pipeline.run([event])
    _, second = pipeline.run([event])
    [[original]] = first.values()
    [[duplicate]] = second.values()
    assert original.status.value == "delivered"
    assert (duplicate.status.value, duplicate.reason) == ("skipped", "duplicate_event")
    books = json.loads(ok(run_cli(pipeline, "stats", "--json")))
    assert (
        books["consumed"]
        == books["delivered"] + books["skipped"] + books["dead_lettered"] + books["in_flight"]
    )


def test_stats_shows_events_waiting_unread(pipeline: Pipeline) -> None:
    prefix = f"unread{uuid.uuid4().hex[:6]}."
    topics = load_topics(Path(pipeline.worker_env["MALL_NOTIFY_CONFIG_DIR"]) / "topics.yaml", prefix)
    ensure_topics(pipeline.bootstrap, topics.all())
    env = {"MALL_NOTIFY_TOPIC_PREFIX": prefix}
    events = "\n".join(to_bytes(payment_event()).decode() for _ in range(3))
    published = ok(run_cli(pipeline, "publish", "-", env=env, stdin=events))
    assert published.count(f"-> {prefix}mall.payments[") == 3
    books = json.loads(ok(run_cli(pipeline, "stats", "--json", env=env)))
    assert (books["consumed"], books["unread"]) == (0, 3)


def test_saving_settings_before_the_topics_exist_is_refused_and_creates_nothing(pipeline: Pipeline) -> None:
    prefix = f"fresh{uuid.uuid4().hex[:6]}."
    result = run_cli(
        pipeline, "settings", "load", "config/shops/demo.yaml", env={"MALL_NOTIFY_TOPIC_PREFIX": prefix}
    )
    assert result.returncode == 3
    assert f"topic(s) {prefix}notify.settings, {prefix}notify.settings.history do not exist" in result.stderr
    assert "run `mall-notify topics ensure` first" in result.stderr
    metadata = admin_client(pipeline.bootstrap).list_topics(timeout=10)
    assert not [name for name in metadata.topics if name.startswith(prefix)]


def test_publish_sends_the_sample_event_to_its_topic(pipeline: Pipeline) -> None:
    out = ok(run_cli(pipeline, "publish", "config/samples/event.json"))
    assert out.startswith(
        f"payment.succeeded evt-pay-20261125-0001 -> {pipeline.topics.event_topic_for('payment.succeeded')}["
    )


def test_topics_ensure_says_how_to_fix_a_topic_auto_create_made(pipeline: Pipeline) -> None:
    prefix = f"autocreated{uuid.uuid4().hex[:6]}."
    settings_topic = load_topics(ROOT / "config" / "topics.yaml", prefix).settings
    admin = admin_client(pipeline.bootstrap)
    for future in admin.create_topics([NewTopic(settings_topic, 1, 1)]).values():
        future.result(10)  # what a broker's auto-create makes: 1 partition, not compacted
    result = run_cli(pipeline, "topics", "ensure", env={"MALL_NOTIFY_TOPIC_PREFIX": prefix})
    assert result.returncode == 3
    assert "drift" in result.stdout
    assert "must be deleted and created again by `mall-notify topics ensure`" in result.stderr
