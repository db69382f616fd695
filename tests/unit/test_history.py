"""A person's history: one line per delivery and event record, the receipt on the delivered one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.base import ChannelName
from streams.core.history import HistoryQuery, history
from streams.core.moments import parse_moment
from streams.core.outcomes import DUPLICATE_EVENT, Outcome, Status
from streams.core.recipients import Recipient
from streams.core.source import SourceRecord
from streams.ops.recipient_history import recipient_query

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BUYER = Recipient(hash="h-buyer", masked="138****5678")
FIRST, AGAIN = SourceRecord("mall.payments", 0, 7), SourceRecord("mall.payments", 0, 9)


def outcome(status: Status, source: SourceRecord, minutes: int, reason: str | None = None) -> Outcome:
    return Outcome(
        status=status,
        delivery_id="d-1",
        event_id="evt-1",
        shop_id=1001,
        scene="buyer_order_paid",
        channel=ChannelName.ALIYUN_SMS,
        source=source,
        at=AT + timedelta(minutes=minutes),
        recipient=BUYER,
        reason=reason,
    )


def test_an_event_published_again_shows_both_the_delivery_and_its_duplicate() -> None:
    lines = history(
        [
            outcome(Status.DEAD_LETTERED, FIRST, 0, "permanent"),
            outcome(Status.DELIVERED, FIRST, 5),  # replayed from the dead-letter topic: replaces it
            outcome(Status.REACHED, FIRST, 6),
            outcome(Status.SKIPPED, AGAIN, 9, DUPLICATE_EVENT),
        ],
        HistoryQuery(recipient_hash="h-buyer"),
    )
    assert [(line.status, line.reason, line.receipt) for line in lines] == [
        (Status.SKIPPED, DUPLICATE_EVENT, None),
        (Status.DELIVERED, None, "reached"),
    ]


@pytest.mark.parametrize(
    ("phone", "openid", "problem"),
    [
        ("12345", None, "phone: not a mainland mobile number"),
        ("138abcd5678", None, "phone: not a mainland mobile number"),
        ("١٣٨١٢٣٤٥٦٧٨", None, "phone: not a mainland mobile number"),  # Arabic-Indic digits
        (None, "o-short", "openid: not a WeChat openid"),
        (None, None, "give one of phone or openid"),
    ],
)
def test_a_phone_or_openid_that_is_none_is_refused_saying_why(
    phone: str | None, openid: str | None, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        recipient_query(b"k" * 32, phone, openid, None, None)


def test_a_phone_may_be_written_as_people_write_it() -> None:
    same = {recipient_query(b"k" * 32, p, None, None, None) for p in ("+86 138 1234 5678", "13812345678")}
    assert len(same) == 1


@pytest.mark.parametrize("text", ["99999999d", "4000d", "2h30m", "²h"])
def test_a_moment_out_of_range_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"further back|neither like"):
        parse_moment(text, AT)
