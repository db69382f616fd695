"""The send log's rows: a delivery's final outcome and its receipt fill one row, in either order;
an event that sent nothing is a row of its own; pages are cut by a cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.base import SendResult
from streams.core.outcomes import Status, delivery_outcome, event_outcome
from streams.core.receipts import ReceiptNote, receipt_outcome
from streams.core.send_log import Message, after_cursor, cursor, page_of, row_of
from streams.core.source import SourceRecord
from tests.factories import dispatch

ROUTED = datetime(2026, 12, 3, 23, 59, 30, tzinfo=UTC)


def test_a_delivery_and_its_receipt_are_one_row_of_the_day_it_was_routed() -> None:
    ended = ROUTED + timedelta(minutes=1)
    sent = delivery_outcome(
        dispatch(created_at=ROUTED), SendResult.delivered("msg-1"), ended, attempts=1, replayed=False
    )
    note = ReceiptNote(
        channel=dispatch().delivery.channel,
        message_id="msg-1",
        reached=False,
        code="43101",
        reason="user refuse",
        at=ROUTED + timedelta(minutes=2),
        received_at=ROUTED + timedelta(minutes=2),
    )
    final, receipt = row_of(sent), row_of(receipt_outcome(sent, note))
    assert (final.kind, receipt.kind) == ("final", "receipt")
    assert final.values["id"] == receipt.values["id"] == sent.delivery_id
    assert final.day == receipt.day == ROUTED.date(), "the day it was routed, though it ended the next"
    assert (final.values["status"], final.values["finished_at"]) == ("delivered", sent.at)
    assert (receipt.values["reached"], receipt.values["receipt_code"]) == (False, "43101")
    assert "finished_at" not in receipt.values, "a receipt never says the delivery ended"


def test_an_event_that_sent_nothing_is_a_row_of_its_own() -> None:
    at = datetime(2026, 12, 4, 8, tzinfo=UTC)
    skipped = event_outcome(
        Status.SKIPPED, "no scene", SourceRecord("mall.orders", 1, 9), at, event_id="evt-1", shop_id=9001
    )
    row = row_of(skipped)
    assert (row.kind, row.values["id"], row.day, row.values["status"]) == (
        "final",
        "evt-1",
        at.date(),
        "skipped",
    )


def test_a_page_ends_with_a_cursor_to_the_next() -> None:
    rows = [
        {
            "id": f"d{n}",
            "shop_id": 1,
            "event_id": "e",
            "delivery_id": f"d{n}",
            "scene": "s",
            "channel": "wechat_oa",
            "status": "delivered",
            "reason": None,
            "provider_code": None,
            "to": "oR8s***jKlM",
            "attempts": 1,
            "routed_at": ROUTED,
            "finished_at": ROUTED - timedelta(seconds=n),
            "reached": None,
            "reached_at": None,
        }
        for n in range(3)
    ]
    page = page_of(rows, 2)
    assert [m.id for m in page.messages] == ["d0", "d1"]
    assert page.next is not None
    assert after_cursor(page.next) == (ROUTED - timedelta(seconds=1), "d1")
    assert page_of(rows, 3).next is None
    assert cursor(Message.model_validate(rows[0])) != page.next
    with pytest.raises(ValueError, match="cursor"):
        after_cursor("not-ours")
