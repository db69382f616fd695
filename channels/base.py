"""The contract between the routing stage and the provider channels.

A :class:`Delivery` is one rendered message for one recipient on one channel; a channel turns
it into a provider call and answers with a :class:`SendResult`, its errors already classified.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class ChannelName(StrEnum):
    WECHAT_OA = "wechat_oa"
    WECHAT_MP = "wechat_mp"
    ALIYUN_SMS = "aliyun_sms"


class ErrorClass(StrEnum):
    """What to do about a failed send."""

    TRANSIENT = "transient"
    """Try again later (provider busy, rate limited, timeout, connection reset)."""
    REAUTH = "reauth"
    """The access token is invalid or expired: refresh it and try once more."""
    PERMANENT = "permanent"
    """Trying again cannot help (user unsubscribed, bad template, bad data)."""


class SourceRecord(BaseModel):
    """Where an event was read: the coordinates that make any outcome traceable."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Delivery(BaseModel):
    """One message to one recipient on one channel, rendered and ready to send."""

    model_config = ConfigDict(frozen=True)

    delivery_id: str = Field(
        description="stable id: the same event, scene, channel and recipient give the same id"
    )
    event_id: str
    event_type: str
    shop_id: int
    scene: str
    channel: ChannelName
    account: str = Field(description="provider account: OA/MP appid, or SMS signature")
    recipient: str = Field(description="openid or phone number")
    template_id: str
    fields: dict[str, str] = Field(description="template keyword -> rendered value")
    link: str | None = None
    source: SourceRecord
    fanout: int = Field(ge=1, description="how many deliveries the event produced in all")
    created_at: datetime


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
