"""A delivery on its way through the send topics: the :class:`~channels.base.Delivery` a provider
needs, wrapped with the bookkeeping of the pipeline (which event, shop and scene it is for, where
the event was read, how many deliveries the event made). One JSON record per dispatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import TypeAdapter, ValidationError

from channels.base import ChannelName, Delivery
from streams.core.recipients import Recipient
from streams.core.source import SourceRecord


@dataclass(frozen=True, slots=True)
class AnswerTo:
    """A delivery of a notice whose channels fall back: whose buyers-lane partition wants to hear
    how it ended (the buyer's user id, its key there) and about which notice."""

    user_id: str
    notice_id: str


@dataclass(frozen=True, slots=True)
class Dispatch:
    delivery: Delivery
    event_id: str
    event_type: str
    shop_id: int
    scene: str
    source: SourceRecord
    """where the event was read"""
    fanout: int
    """how many deliveries the event made in all"""
    created_at: datetime
    event_time: datetime | None = None
    """the event's own time (end-to-end latency is measured from it)"""
    sms_segments: int = 0
    """SMS: the segments Aliyun bills for it (what it costs the shop's balance)"""
    recipient: Recipient | None = None
    """the recipient's keyed hash and masked form, for the outcomes (see :mod:`streams.core.recipients`)"""
    deferred_until: datetime | None = None
    """held by quiet hours until then, before it came to its send topic"""
    fallback_from: ChannelName | None = None
    """sent because this channel of the notice could not reach the buyer"""
    answer_to: AnswerTo | None = None
    """a notice's channels fall back: its sender tells the buyers lane how it ended"""

    @property
    def sms_cost(self) -> int | None:
        """An SMS: the segments it costs the shop's balance (one at least); None for WeChat."""
        return max(self.sms_segments, 1) if self.delivery.channel is ChannelName.ALIYUN_SMS else None

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    def to_text(self) -> str:
        return self.to_json().decode()


_DISPATCH: TypeAdapter[Dispatch] = TypeAdapter(Dispatch)


def parse_dispatch(raw: bytes | None) -> Dispatch:
    """A send-topic record as a :class:`Dispatch`; raises pydantic's ValidationError."""
    return _DISPATCH.validate_json(raw or b"", strict=True)


__all__ = ["Dispatch", "ValidationError", "parse_dispatch"]
