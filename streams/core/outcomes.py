"""What finally happened to an event or a delivery. Pure, no Kafka.

Every consumed event ends in the outcomes topic: one ``delivered`` or ``dead_lettered`` record per
delivery, or one ``skipped`` / ``dead_lettered`` record for an event that produced no delivery.
Records are keyed by delivery id (or event id): the latest record of a key is its final state,
which a replay from the dead-letter topic may turn from ``dead_lettered`` into ``delivered``.
An event published again (same id, same key) ends ``skipped`` with reason ``duplicate_event``
(per delivery when it was routed, else once), keyed with its own record, so it never hides the
outcome of the first.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from channels.base import ChannelName, ErrorClass, SendResult
from streams.core.dispatch import Dispatch
from streams.core.failures import Failure
from streams.core.recipients import Recipient
from streams.core.source import SourceRecord


class Status(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"
    REACHED = "reached"
    """a receipt: the provider says the message reached the person (a second record, after delivered)"""
    NOT_REACHED = "not_reached"
    """a receipt: the provider says it did not (blocked, switched off, ...), with its reason"""


FINAL_STATUSES = (Status.DELIVERED, Status.SKIPPED, Status.DEAD_LETTERED)
"""what every consumed event ends as; receipts come on top of ``delivered``"""

DUPLICATE_EVENT = "duplicate_event"


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Status
    event_id: str | None = None
    delivery_id: str | None = None
    shop_id: int | None = None
    scene: str | None = None
    channel: ChannelName | None = None
    reason: str | None = None
    error_class: ErrorClass | None = None
    provider_code: str | None = None
    source: SourceRecord
    fanout: int = 1
    attempts: int = 1
    replayed: bool = False
    at: datetime
    recipient: Recipient | None = None
    """who it went to: the keyed hash of the address and its masked form, never the address"""
    provider_message_id: str | None = None
    """WeChat's msgid, Aliyun's BizId: what the provider's receipt names"""
    routed_at: datetime | None = None
    """when the router made the delivery (the same in every outcome of it): its day in the send log"""
    sms_segments: int | None = None
    """an SMS: the segments Aliyun bills for it, what a delivered one cost its shop's balance"""
    deferred_until: datetime | None = None
    """held by the buyer's quiet hours until then (or, skipped as expired, it would have been)"""
    fallback_from: ChannelName | None = None
    """sent because this channel of the notice could not reach the buyer"""

    def key(self) -> bytes:
        """Outcomes are keyed by delivery (or event, or source record) so a reader can compact them."""
        if self.reason == DUPLICATE_EVENT:
            return f"{self.delivery_id or self.event_id}@{self.source}".encode()
        if self.status in (Status.REACHED, Status.NOT_REACHED):  # a receipt never replaces the outcome
            return f"{self.delivery_id}#receipt".encode()
        return (self.delivery_id or self.event_id or str(self.source)).encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def _about(dispatch: Dispatch) -> dict[str, Any]:
    """What every outcome of a delivery says of it."""
    return {
        "event_id": dispatch.event_id,
        "delivery_id": dispatch.delivery.delivery_id,
        "shop_id": dispatch.shop_id,
        "scene": dispatch.scene,
        "channel": dispatch.delivery.channel,
        "source": dispatch.source,
        "fanout": dispatch.fanout,
        "recipient": dispatch.recipient,
        "routed_at": dispatch.created_at,
        "sms_segments": dispatch.sms_cost,
        "deferred_until": dispatch.deferred_until,
        "fallback_from": dispatch.fallback_from,
    }


def delivery_outcome(
    dispatch: Dispatch, result: SendResult, at: datetime, *, attempts: int, replayed: bool
) -> Outcome:
    """The final outcome of a delivery: delivered, or dead-lettered with the provider's answer."""
    return Outcome(
        status=Status.DELIVERED if result.ok else Status.DEAD_LETTERED,
        reason=result.reason,
        error_class=result.error_class,
        provider_code=result.code,
        provider_message_id=result.provider_message_id,
        attempts=attempts,
        replayed=replayed,
        at=at,
        **_about(dispatch),
    )


def skipped_delivery(
    dispatch: Dispatch,
    reason: str,
    at: datetime,
    *,
    replayed: bool,
    provider_code: str | None = None,
    attempts: int = 0,
) -> Outcome:
    """A delivery its sender decided not to send (a code expired, a phone over its limit, a copy
    of an event already delivered), or whose person the provider said it cannot reach (with the
    provider's code: not following, no subscription, blocked)."""
    return Outcome(
        status=Status.SKIPPED,
        reason=reason,
        provider_code=provider_code,
        attempts=attempts,
        replayed=replayed,
        at=at,
        **_about(dispatch),
    )


def event_outcome(
    status: Status,
    failure_or_reason: Failure | str,
    source: SourceRecord,
    at: datetime,
    event_id: str | None = None,
    shop_id: int | None = None,
) -> Outcome:
    """The final outcome of an event that produced no delivery: skipped, or dead-lettered."""
    if isinstance(failure_or_reason, Failure):
        failure = failure_or_reason
        return Outcome(
            status=status,
            event_id=failure.event_id or event_id,
            shop_id=shop_id,
            reason=f"{failure.reason}: {failure.detail}",
            source=source,
            at=at,
            replayed=bool(failure.replays),
        )
    return Outcome(
        status=status, event_id=event_id, shop_id=shop_id, reason=failure_or_reason, source=source, at=at
    )


def settled(outcomes: list[Outcome]) -> bool:
    """An event is settled by one event-level outcome, or by a final outcome for each of its
    deliveries (receipts, which come later, do not count)."""
    outcomes = [outcome for outcome in outcomes if outcome.status in FINAL_STATUSES]
    if any(outcome.delivery_id is None for outcome in outcomes):
        return True
    return bool(outcomes) and len({o.delivery_id for o in outcomes}) >= outcomes[0].fanout
