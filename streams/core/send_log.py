"""The send log as rows: what each outcome says of its delivery, and how a page of it is asked
for. Pure (the SQL is :mod:`streams.runtime.database`).

A delivery is one row, keyed by the day it was routed and its delivery id: its final outcome
(delivered, skipped, dead-lettered) and its receipt (reached or not) fill different columns of the
same row, in whichever order they come. An event that sent nothing is a row of its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from channels.base import ChannelName
from streams.core.buyer_choices import scope_of
from streams.core.events import PreferencesChanged
from streams.core.outcomes import Outcome, Status
from streams.core.rendering import MALL_TIME_ZONE
from streams.core.sms_quota import Balance

RECEIPTS = (Status.REACHED, Status.NOT_REACHED)
PAGE_MOST = 200


@dataclass(frozen=True, slots=True)
class Row:
    kind: Literal["final", "receipt", "choice"]
    values: dict[str, Any]
    """column -> value"""

    @property
    def day(self) -> date:
        day: date = self.values["day"]
        return day


def choice_row(changed: PreferencesChanged, shop_id: int) -> Row:
    """The row of a buyer's preferences in one scope (a shop id, or ``platform``)."""
    return Row(
        "choice",
        {
            "user_id": changed.user_id,
            "scope": scope_of(changed, shop_id),
            "categories_off": sorted(set(changed.categories_off)),
            "channels_off": sorted(set(changed.channels_off)),
            "quiet_hours": str(changed.quiet_hours) if changed.quiet_hours is not None else None,
            "changed_at": changed.changed_at,
        },
    )


def row_of(outcome: Outcome) -> Row:
    """The row an outcome writes (a receipt only its receipt's columns)."""
    at = outcome.routed_at or outcome.at
    day = at.astimezone(UTC).date()
    common = {
        "day": day,
        "shop_id": outcome.shop_id,
        "event_id": outcome.event_id,
        "delivery_id": outcome.delivery_id,
        "scene": outcome.scene,
        "channel": outcome.channel.value if outcome.channel else None,
        "recipient_hash": outcome.recipient.hash if outcome.recipient else None,
        "recipient_masked": outcome.recipient.masked if outcome.recipient else None,
        "routed_at": outcome.routed_at,
        "attempts": outcome.attempts,
    }
    if outcome.status in RECEIPTS:
        return Row(
            "receipt",
            common
            | {
                "id": outcome.delivery_id or outcome.key().decode(),
                "status": Status.DELIVERED.value,
                "reached": outcome.status is Status.REACHED,
                "reached_at": outcome.at,
                "receipt_code": outcome.provider_code,
                "receipt_reason": outcome.reason,
            },
        )
    return Row(
        "final",
        common
        | {
            "id": outcome.key().decode(),
            "status": outcome.status.value,
            "reason": outcome.reason,
            "provider_code": outcome.provider_code,
            "replayed": outcome.replayed,
            "finished_at": outcome.at,
            "sms_segments": outcome.sms_segments,
            "deferred_until": outcome.deferred_until,
        },
    )


class MessageQuery(BaseModel):
    """A page of the send log: filters, and where the previous page ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shop_id: int | None = Field(default=None, gt=0)
    since: datetime | None = None
    until: datetime | None = None
    scene: str | None = Field(default=None, max_length=64)
    channel: ChannelName | None = None
    status: Literal["delivered", "skipped", "dead_lettered"] | None = None
    reached: bool | None = None
    recipient_hash: str | None = None
    limit: int = Field(default=50, ge=1, le=PAGE_MOST)
    after: tuple[datetime, str] | None = None
    """the last row of the previous page: (finished_at, id)"""


class Message(BaseModel):
    """One row of the send log, as the API and the CLI show it."""

    id: str
    shop_id: int | None
    event_id: str | None
    delivery_id: str | None
    scene: str | None
    channel: str | None
    status: str
    reason: str | None
    provider_code: str | None
    to: str | None
    """the recipient, masked"""
    attempts: int
    routed_at: datetime | None
    finished_at: datetime | None
    reached: bool | None
    reached_at: datetime | None
    receipt_reason: str | None = None
    """why it did not reach the person, as the provider's receipt says"""
    sms_segments: int | None = None
    """an SMS: the segments it cost the shop"""
    deferred_until: datetime | None = None
    """held by the buyer's quiet hours until then"""


class Page(BaseModel):
    messages: list[Message]
    next: str | None
    """the cursor of the next page (None: this was the last)"""


def cursor(message: Message) -> str:
    finished = message.finished_at.isoformat() if message.finished_at else ""
    return base64.urlsafe_b64encode(orjson.dumps([finished, message.id])).decode()


def after_cursor(text: str) -> tuple[datetime, str]:
    """The (finished_at, id) a cursor names; ValueError when it is not a cursor of ours."""
    try:
        finished, message_id = orjson.loads(base64.urlsafe_b64decode(text.encode()))
        return datetime.fromisoformat(finished), str(message_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ValueError("cursor: not a cursor this API gave") from None


def page_of(rows: list[dict[str, Any]], limit: int) -> Page:
    """A page of at most ``limit`` messages from the rows read (one more tells there is a next)."""
    messages = [Message.model_validate(row) for row in rows[:limit]]
    return Page(messages=messages, next=cursor(messages[-1]) if len(rows) > limit and messages else None)


SPEND_DAYS_MOST = 90


class DaySpend(BaseModel):
    """A shop's SMS delivered on one day (the mall's time, Asia/Shanghai)."""

    day: date
    messages: int = Field(description="SMS delivered")
    segments: int = Field(description="segments they cost the shop's balance")


class Spend(BaseModel):
    """A shop's SMS spend: its balance now, and what it sent each day, newest first."""

    shop_id: int
    balance: Balance
    days: list[DaySpend]


def spend_since(now: datetime, days: int) -> datetime:
    """The first moment of a spend of ``days`` days up to ``now`` (today included), in the mall's time;
    ValueError for a number of days out of range."""
    if not 1 <= days <= SPEND_DAYS_MOST:
        raise ValueError(f"days: 1 to {SPEND_DAYS_MOST}")
    today = now.astimezone(MALL_TIME_ZONE).date()
    first = today - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=MALL_TIME_ZONE)


def spend_of(balance: Balance, rows: list[dict[str, Any]], since: datetime, now: datetime) -> Spend:
    """Every day from ``since`` to ``now``'s (the days without an SMS too), from the rows read."""
    found = {row["day"]: DaySpend.model_validate(row) for row in rows}
    first, today = since.astimezone(MALL_TIME_ZONE).date(), now.astimezone(MALL_TIME_ZONE).date()
    days = [today - timedelta(days=n) for n in range((today - first).days + 1)]
    return Spend(
        shop_id=balance.shop_id,
        balance=balance,
        days=[found.get(day, DaySpend(day=day, messages=0, segments=0)) for day in days],
    )
