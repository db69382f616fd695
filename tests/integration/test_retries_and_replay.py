"""Failure handling as an SRE sees it: transient outages ride the retry tiers, permanent errors
and exhausted retries land in the dead-letter topic, and a replay after the fix delivers once."""

from __future__ import annotations

from datetime import datetime

import pytest

from streams.core.failures import header_map
from streams.core.outcomes import Outcome
from streams.ops.reading import end_offsets
from tests.factories import payment_event, to_bytes
from tests.integration.conftest import Pipeline, ok, run_cli

pytestmark = pytest.mark.integration
SEND = "/cgi-bin/message/template/send"


def _only(outcomes: dict[str, list[Outcome]]) -> Outcome:
    [[outcome]] = outcomes.values()
    return outcome


def _send_times(pipeline: Pipeline, delivery_id: str | None) -> list[float]:
    return [r["at"] for r in pipeline.sandbox_requests(SEND) if r["body"]["client_msg_id"] == delivery_id]


def test_a_transient_outage_is_retried_through_the_tiers_and_delivered(pipeline: Pipeline) -> None:
    pipeline.add_fault(target=SEND, errcode=-1, count=2)
    _, outcomes = pipeline.run([to_bytes(payment_event())])
    outcome = _only(outcomes)
    assert (outcome.status.value, outcome.attempts) == ("delivered", 3)
    first, second, third = _send_times(pipeline, outcome.delivery_id)
    tiers = pipeline.topics.spec.retry.tiers
    assert second - first >= tiers[0].delay_seconds, "a retry is never early"
    assert third - second >= tiers[1].delay_seconds


def test_retries_exhausted_end_in_the_dead_letter_topic(pipeline: Pipeline) -> None:
    tiers = pipeline.topics.spec.retry.tiers
    pipeline.add_fault(target=SEND, errcode=45047, count=len(tiers) + 1)
    start = end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter)
    event = payment_event()
    _, outcomes = pipeline.run([to_bytes(event)])
    outcome = _only(outcomes)
    assert (outcome.status.value, outcome.provider_code, outcome.attempts) == ("dead_lettered", "45047", 4)
    [letter] = pipeline.dead_letters_from(start, 1)
    history = header_map(letter.headers)
    assert history["x-notify-reason"] == "retries_exhausted"
    assert history["x-notify-attempts"] == str(len(tiers) + 1)
    first = datetime.fromisoformat(history["x-notify-first-failed-at"])
    last = datetime.fromisoformat(history["x-notify-last-failed-at"])
    assert (last - first).total_seconds() >= sum(tier.delay_seconds for tier in tiers)
    assert history["x-notify-event-id"] == event["id"]


def test_a_replay_after_the_fix_delivers_exactly_once(pipeline: Pipeline) -> None:
    pipeline.add_fault(target=SEND, errcode=40037, count=1)  # the template was deleted ... then restored
    _, outcomes = pipeline.run([to_bytes(payment_event())])
    failed = _only(outcomes)
    assert failed.status.value == "dead_lettered"
    delivery_id = str(failed.delivery_id)

    dry = ok(run_cli(pipeline, "dlq", "replay", "--delivery-id", delivery_id, "--dry-run"))  # asks nothing
    assert "would replay 1 of 1 matching dead letters" in dry
    assert len(_send_times(pipeline, delivery_id)) == 1, "a dry run sends nothing"

    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    out = ok(run_cli(pipeline, "dlq", "replay", "--delivery-id", delivery_id, "--rate", "20", "--yes"))
    assert "replayed 1 of 1 matching dead letters" in out
    records = pipeline.outcomes_from(start, lambda o: o.delivery_id == delivery_id)
    [replayed] = [Outcome.model_validate_json(r.value) for r in records]
    assert (replayed.status.value, replayed.replayed) == ("delivered", True)
    assert len(_send_times(pipeline, delivery_id)) == 2

    suppressed = pipeline.metric_total("mall_notify_duplicates_suppressed_total")
    again = ok(run_cli(pipeline, "dlq", "replay", "--delivery-id", delivery_id, "--yes"))
    assert "replayed 1 of 1" in again
    pipeline.wait_for_metric_above("mall_notify_duplicates_suppressed_total", suppressed)
    assert len(_send_times(pipeline, delivery_id)) == 2, "the second replay sends nothing"
    messages = [
        m for m in pipeline.sandbox_messages("wechat_oa") if m["body"]["client_msg_id"] == delivery_id
    ]
    assert len(messages) == 1


def test_dlq_list_filters_by_code(pipeline: Pipeline) -> None:
    pipeline.add_fault(target=SEND, errcode=47003, count=1)
    _, outcomes = pipeline.run([to_bytes(payment_event())])
    failed = _only(outcomes)
    listing = ok(run_cli(pipeline, "dlq", "list", "--code", "47003", "--since", "1h"))
    assert "47003" in listing
    assert "buyer_order_paid" in listing
    assert "1 dead letters" in listing or "dead letters" in listing
    none = ok(run_cli(pipeline, "dlq", "list", "--code", "47003", "--shop", "999999"))
    assert "0 dead letters" in none
    assert failed.provider_code == "47003"


def test_stats_balance_the_books(pipeline: Pipeline) -> None:
    pipeline.run([to_bytes(payment_event()), b"not json"])
    out = ok(run_cli(pipeline, "stats"))
    consumed, delivered, skipped, dead, in_flight = (int(x) for x in _invariant(out))
    assert consumed == delivered + skipped + dead + in_flight
    assert consumed >= 2
    assert delivered >= 1
    assert dead >= 1


def _invariant(text: str) -> list[str]:
    import re

    match = re.search(r"(\d+) = (\d+) \+ (\d+) \+ (\d+) \+ (-?\d+) \(in flight\)", text)
    assert match, text
    return list(match.groups())
