"""Which dead letters a selection picks, where a replay sends them, and the accounting invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from channels.base import ChannelName
from streams.core.failures import Failure, Stage
from streams.core.outcomes import Outcome, Status
from streams.core.source import SourceRecord
from streams.core.topics import load_topics
from streams.ops.dlq import Selection, describe, replay_topic
from streams.ops.reading import ReadRecord
from streams.ops.stats import account
from tests.factories import ROOT, delivery, dispatch, payment_event, to_bytes

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TOPICS = load_topics(ROOT / "config" / "topics.yaml")


def letter(
    stage: Stage, value: bytes, code: str | None = None, reason: str = "permanent", at: datetime = NOW
) -> ReadRecord:
    failure = Failure(
        stage=stage,
        reason=reason,
        detail="",
        origin=SourceRecord(topic="mall.payments", partition=1, offset=5),
        first_failed_at=at,
        last_failed_at=at,
        provider_code=code,
        delivery_id="d-1",
    )
    return ReadRecord("notify.dlq", 0, 7, b"E1", value, failure.headers())


SEND_LETTER = letter(
    Stage.SEND,
    dispatch(delivery(channel=ChannelName.WECHAT_MP), scene="buyer_order_paid").to_json(),
    code="43101",
)
PARSE_LETTER = letter(
    Stage.PARSE, to_bytes(payment_event()), reason="schema_invalid", at=NOW - timedelta(days=2)
)
RAW_LETTER = ReadRecord("notify.dlq", 0, 9, None, b"\xff garbage", [])


@pytest.mark.parametrize(
    ("selection", "picked"),
    [
        (Selection(), [SEND_LETTER, PARSE_LETTER, RAW_LETTER]),
        (Selection(code="43101"), [SEND_LETTER]),
        (Selection(code="schema_invalid"), [PARSE_LETTER]),
        (Selection(channel=ChannelName.WECHAT_MP, shop_id=9001), [SEND_LETTER]),
        (Selection(since=NOW - timedelta(hours=1)), [SEND_LETTER]),
        (Selection(until=NOW - timedelta(days=1), stage=Stage.PARSE), [PARSE_LETTER]),
        (Selection(scene="buyer_order_paid", delivery_id="d-1"), [SEND_LETTER]),
        (Selection(shop_id=2002), []),
    ],
)
def test_a_selection_picks_by_every_criterion(selection: Selection, picked: list[ReadRecord]) -> None:
    letters = [describe(record) for record in (SEND_LETTER, PARSE_LETTER, RAW_LETTER)]
    assert [letter.record for letter in letters if selection.matches(letter)] == picked


def test_a_replay_goes_back_where_it_can_be_processed() -> None:
    assert replay_topic(describe(SEND_LETTER), TOPICS) == TOPICS.send_topic(ChannelName.WECHAT_MP)
    assert replay_topic(describe(PARSE_LETTER), TOPICS) == "mall.payments"
    assert replay_topic(describe(RAW_LETTER), TOPICS) is None


def test_a_replayed_event_goes_back_to_its_partition_where_its_ledger_entry_is() -> None:
    parse_letter = describe(PARSE_LETTER)
    assert parse_letter.failure is not None
    assert parse_letter.failure.partition_in("mall.payments") == 1, "the partition it was first read from"
    assert parse_letter.failure.partition_in("notify.send.wechat_mp") is None, "else the key decides"


def test_a_reference_to_a_record_too_large_to_copy_is_not_replayed() -> None:
    reference = letter(Stage.PARSE, b'{"too_large": {"topic": "mall.payments"}}', reason="too_large")
    assert replay_topic(describe(reference), TOPICS) is None


def outcome(status: Status, offset: int, delivery_id: str | None = None, fanout: int = 1) -> Outcome:
    return Outcome(
        status=status,
        event_id=f"e{offset}",
        delivery_id=delivery_id,
        fanout=fanout,
        source=SourceRecord(topic="mall.payments", partition=0, offset=offset),
        at=NOW,
    )


def test_the_books_balance() -> None:
    outcomes = [
        outcome(Status.DELIVERED, 0, "d0"),
        outcome(Status.SKIPPED, 1),
        outcome(Status.DEAD_LETTERED, 2),
        outcome(Status.DELIVERED, 3, "d3a", fanout=2),  # one of two deliveries: in flight
        outcome(Status.DELIVERED, 4, "d4a", fanout=2),
        outcome(Status.DEAD_LETTERED, 4, "d4b", fanout=2),
        outcome(Status.DELIVERED, 9, "d9"),  # handled, offset not committed yet: not counted
    ]
    books = account({("mall.payments", 0): 6}, {("mall.payments", 0): 0}, outcomes, retry_waiting=1)
    assert (books.consumed, books.delivered, books.skipped, books.dead_lettered, books.in_flight) == (
        6,
        1,
        1,
        2,
        2,
    )
    assert books.consumed == books.delivered + books.skipped + books.dead_lettered + books.in_flight
    assert orjson.loads(outcomes[0].to_json())["status"] == "delivered"
