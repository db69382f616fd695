"""What was sent to one person: the send log's rows of a recipient's keyed hash, newest first, each
with the provider's receipt when one came. Pure (the rows come from PostgreSQL).

An event published again shows its copy's ``duplicate_event`` line next to the original's: the
copy's outcome is a row of its own in the send log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.core.outcomes import Status
from streams.core.send_log import PAGE_MOST, Message, MessageQuery

HISTORY_MOST = PAGE_MOST
"""the newest lines a history shows (the send log pages further back)"""


@dataclass(frozen=True)
class HistoryQuery:
    recipient_hash: str
    shop_id: int | None = None
    since: datetime | None = None

    def messages(self) -> MessageQuery:
        """The send log's page of this person's newest messages."""
        return MessageQuery(
            recipient_hash=self.recipient_hash, shop_id=self.shop_id, since=self.since, limit=HISTORY_MOST
        )


class HistoryLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    shop_id: int | None
    scene: str | None
    channel: str | None
    recipient: str
    """the masked address"""
    status: Status
    reason: str | None = None
    receipt: str | None = None
    """reached / not_reached, when the provider's receipt came"""
    receipt_reason: str | None = None
    delivery_id: str | None = None


def line_of(message: Message) -> HistoryLine:
    """A send log row as a line of history (its receipt only on a delivered message)."""
    status = Status(message.status)
    delivered = status is Status.DELIVERED and message.reached is not None
    return HistoryLine(
        at=message.finished_at,  # the send log lists finished messages only
        shop_id=message.shop_id,
        scene=message.scene,
        channel=message.channel,
        recipient=message.to or "",
        status=status,
        reason=message.reason,
        receipt=(Status.REACHED if message.reached else Status.NOT_REACHED).value if delivered else None,
        receipt_reason=message.receipt_reason if delivered else None,
        delivery_id=message.delivery_id,
    )


def history_lines(rows: list[dict[str, Any]]) -> list[HistoryLine]:
    """The lines of the send log's rows read for :meth:`HistoryQuery.messages`."""
    return [line_of(Message.model_validate(row)) for row in rows[:HISTORY_MOST]]
