"""The send log's store on a real PostgreSQL, without the broker: a person's history as the rows
of their outcomes make it (a replay replacing a dead letter, a copy of an event beside the
original, the receipt on the delivered message), a shop's SMS spend per day, and the days older
than the retention dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from channels.base import ChannelName
from streams.core.history import HistoryQuery, history_lines
from streams.core.outcomes import DUPLICATE_EVENT, Outcome, Status
from streams.core.recipients import Recipient
from streams.core.send_log import row_of, spend_of, spend_since
from streams.core.sms_quota import Balance
from streams.core.source import SourceRecord
from streams.runtime.database import (
    fetch,
    messages_statement,
    migrate,
    partition_name,
    retain,
    spend_statement,
    write_rows,
)

pytestmark = pytest.mark.integration
FIRST, AGAIN = SourceRecord("mall.payments", 0, 7), SourceRecord("mall.payments", 0, 9)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url) as connection:
        migrate(connection)
        yield connection


def store(conn: psycopg.Connection[Any], *outcomes: Outcome) -> None:
    """The outcomes written as the send-log lane writes them, one batch each, in this order."""
    for outcome in outcomes:
        write_rows(conn, "tests.store", [row_of(outcome)], {}, set())


def outcome(status: Status, at: datetime, **about: Any) -> Outcome:
    values: dict[str, Any] = {
        "delivery_id": "d-1",
        "event_id": "evt-1",
        "shop_id": 1001,
        "scene": "buyer_order_paid",
        "channel": ChannelName.ALIYUN_SMS,
        "source": FIRST,
        "routed_at": at,
    }
    return Outcome(status=status, at=at, **(values | about))


def test_history_shows_a_replayed_delivery_with_its_receipt_beside_a_copy_of_the_event(
    conn: psycopg.Connection[Any],
) -> None:
    buyer = Recipient(hash=f"h-{uuid.uuid4().hex}", masked="138****5678")
    routed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    ids = {"delivery_id": f"d-{uuid.uuid4().hex}", "event_id": f"evt-{uuid.uuid4().hex}", "recipient": buyer}
    dead = outcome(Status.DEAD_LETTERED, routed, reason="permanent", **ids)
    replayed = outcome(Status.DELIVERED, routed + timedelta(minutes=5), replayed=True, **ids)
    not_reached = outcome(Status.NOT_REACHED, routed + timedelta(minutes=6), reason="IS:0001: 空号", **ids)
    copy = outcome(Status.SKIPPED, routed + timedelta(minutes=9), reason=DUPLICATE_EVENT, source=AGAIN, **ids)
    # the receipt comes before the replay's outcome is stored, and the dead letter after it: the
    # newest final outcome wins whatever the order they are written in
    store(conn, not_reached, replayed, dead, copy)

    lines = history_lines(fetch(conn, messages_statement(HistoryQuery(buyer.hash).messages())))
    assert [(line.status, line.reason, line.receipt, line.receipt_reason) for line in lines] == [
        (Status.SKIPPED, DUPLICATE_EVENT, None, None),
        (Status.DELIVERED, None, "not_reached", "IS:0001: 空号"),
    ]
    assert {line.recipient for line in lines} == {"138****5678"}
    other_shop = HistoryQuery(buyer.hash, shop_id=1002).messages()
    assert fetch(conn, messages_statement(other_shop)) == []


def test_a_delivered_message_stays_delivered_when_a_copy_of_its_event_is_skipped_later(
    conn: psycopg.Connection[Any],
) -> None:
    """A copy of the event read after the buyer opted out ends skipped under the same delivery id:
    the buyer got the first, and the send log says so."""
    buyer = Recipient(hash=f"h-{uuid.uuid4().hex}", masked="138****5678")
    routed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    ids = {"delivery_id": f"d-{uuid.uuid4().hex}", "event_id": f"evt-{uuid.uuid4().hex}", "recipient": buyer}
    delivered = outcome(Status.DELIVERED, routed + timedelta(minutes=1), **ids)
    later = routed + timedelta(minutes=9)
    copy = outcome(Status.SKIPPED, later, reason="opted_out: marketing", source=AGAIN, **ids)
    store(conn, delivered, copy)

    lines = history_lines(fetch(conn, messages_statement(HistoryQuery(buyer.hash).messages())))
    assert [(line.status, line.reason) for line in lines] == [(Status.DELIVERED, None)]


def test_a_shops_sms_spend_counts_each_delivered_sms_on_its_day_in_the_malls_time(
    conn: psycopg.Connection[Any],
) -> None:
    shop = 700_000 + uuid.uuid4().int % 100_000
    now = datetime.now(UTC)
    since = spend_since(now, 3)  # midnight in Shanghai, two days ago
    sms: dict[str, Any] = {"shop_id": shop, "channel": ChannelName.ALIYUN_SMS}

    def sent(at: datetime, status: Status = Status.DELIVERED, segments: int = 2, **more: Any) -> Outcome:
        ids = {"delivery_id": f"d-{uuid.uuid4().hex}", "event_id": f"evt-{uuid.uuid4().hex}"}
        return outcome(status, at, sms_segments=segments, **(sms | ids | more))

    store(
        conn,
        sent(since + timedelta(minutes=1)),  # the first day: 00:01 in Shanghai, 16:01 UTC the day before
        sent(since + timedelta(minutes=2), segments=3),
        sent(since - timedelta(minutes=1)),  # before the first day: not counted
        sent(now, Status.SKIPPED, reason="sms_quota_exhausted"),  # not sent: not spent
        sent(now, channel=ChannelName.WECHAT_OA, segments=0),  # not an SMS
        sent(now, shop_id=shop + 1),  # another shop's
        sent(now),
    )
    balance = Balance(shop_id=shop, purchased=100, used=9, sent=4, refused=1, available=91)
    spend = spend_of(balance, fetch(conn, spend_statement(shop, since)), since, now)
    first = since.date()
    assert [(day.day, day.messages, day.segments) for day in spend.days] == [
        (first + timedelta(days=2), 1, 2),
        (first + timedelta(days=1), 0, 0),
        (first, 2, 5),
    ]
    assert spend.balance.available == 91


def test_days_older_than_the_retention_are_dropped_whole(conn: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    old, kept = now - timedelta(days=31), now - timedelta(days=29)
    ids = [f"d-{uuid.uuid4().hex}" for _ in range(2)]
    store(
        conn,
        outcome(Status.DELIVERED, old, delivery_id=ids[0], shop_id=1003),
        outcome(Status.DELIVERED, kept, delivery_id=ids[1], shop_id=1003),
    )
    dropped = retain(conn, keep_days=30, now=now)

    assert old.date() in dropped
    assert kept.date() not in dropped
    left = conn.execute("SELECT delivery_id FROM messages WHERE delivery_id = ANY(%s)", [ids]).fetchall()
    assert left == [(ids[1],)]
    partitions = {row[0] for row in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'r'")}
    assert partition_name(old.date()) not in partitions
    assert partition_name(kept.date()) in partitions
