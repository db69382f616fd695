"""The contract between the pipeline and the provider channels.

A :class:`Delivery` is one rendered message for one recipient on one channel: exactly what a
provider call needs, nothing about where it came from. A channel turns it into a provider call
and answers with a :class:`SendResult`, its errors already classified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class ChannelName(StrEnum):
    WECHAT_OA = "wechat_oa"
    WECHAT_MP = "wechat_mp"
    ALIYUN_SMS = "aliyun_sms"
    WEBHOOK = "webhook"
    """a merchant's own endpoint, told of outcomes (not a provider: no scene sends on it)"""


class ErrorClass(StrEnum):
    """What to do about a failed send."""

    TRANSIENT = "transient"
    """Try again later (provider busy, rate limited, timeout, connection reset)."""
    REAUTH = "reauth"
    """The access token is invalid or expired: refresh it and try once more."""
    PERMANENT = "permanent"
    """Trying again cannot help (bad template, bad data, bad settings): dead-lettered."""
    UNREACHABLE = "unreachable"
    """The person cannot be reached on this channel now (unfollowed the Official Account, no Mini
    Program subscription, blocked the account): routine buyer behaviour, not a failure; the
    delivery ends skipped with the reason (``not_following``, ``no_subscription``,
    ``blocked_by_user``)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one recipient on one channel, rendered and ready to send."""

    delivery_id: str
    """Stable: the same event, scene, channel and recipient give the same id. WeChat's
    ``client_msg_id`` and Aliyun's ``OutId``."""
    channel: ChannelName
    account: str
    """The provider account: OA/MP appid, or SMS signature."""
    recipient: str
    """openid or phone number"""
    template_id: str
    fields: dict[str, str]
    """template keyword (or SMS parameter) -> rendered value"""
    link: str | None = None
    """OA url or MP page"""


class SendResult(BaseModel):
    """What a provider said about one delivery, classified once by the channel."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    error_class: ErrorClass | None = None
    code: str | None = Field(default=None, description="the provider's own code, e.g. 43004")
    reason: str | None = Field(default=None, description="what the code means, for a person")
    provider_message_id: str | None = None
    unknown_code: bool = Field(default=False, description="the provider code is not in our table")

    @classmethod
    def delivered(cls, provider_message_id: str | None) -> SendResult:
        return cls(ok=True, provider_message_id=provider_message_id)

    @classmethod
    def failed(
        cls, error_class: ErrorClass, code: str, reason: str, unknown_code: bool = False
    ) -> SendResult:
        return cls(ok=False, error_class=error_class, code=code, reason=reason, unknown_code=unknown_code)


class Channel(Protocol):
    """A provider that can send a :class:`Delivery`. Implementations never raise for provider errors."""

    name: ChannelName

    async def send(self, delivery: Delivery) -> SendResult: ...


class SentLookup(Protocol):
    """A provider that can say whether it already took a delivery (by our delivery id): the answer
    to a send *in doubt*, one whose earlier attempt may have gone out unseen (a crash before its
    outcome was written, a timeout)."""

    async def took(self, delivery: Delivery, since: datetime, now: datetime) -> SendResult | None:
        """Delivered when the provider has the message (sent since ``since``), None when it has
        none; a failed result (classified) when it could not be asked."""
        ...


@dataclass(frozen=True, slots=True)
class PushedReceipt:
    """What a provider pushed about one message it had accepted: did it reach the person?"""

    channel: ChannelName
    message_id: str
    """WeChat's msgid, Aliyun's BizId: what the send call returned"""
    reached: bool
    code: str
    """the provider's status or error code (success, failed:user block, 43101, DELIVERED, MK:0001...)"""
    reason: str
    """what it means, for a person"""
    at: float
    """when the provider says it happened, seconds since the epoch"""
    delivery_id: str | None = None
    """when the provider echoes it (Aliyun's OutId)"""
    account: str = ""
    """the account whose server URL it came to (a WeChat appid; Aliyun's pushes name none)"""
