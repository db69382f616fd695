"""The bodies the admin API's SMS and Mini Program endpoints take and answer (and its OpenAPI
document describes)."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt

from streams.core.credentials import ACCESS_KEY_ID, APPID
from streams.core.events import BuyerNos


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


BodyT = TypeVar("BodyT", bound=BaseModel)


class PurchaseRequest(Body):
    package: str = Field(max_length=32)


class PaymentRequest(Body):
    """The platform confirms that a purchase order was paid (offline), saying how."""

    reason: str = Field(min_length=1, max_length=200)


class SignatureRequest(Body):
    name: str = Field(max_length=64)


class PackageRequest(Body):
    """A new package (strict numbers: ``true`` is no price)."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=32)
    messages: StrictInt = Field(gt=0, le=10_000_000, description="segments it adds to a balance")
    price_fen: StrictInt = Field(ge=0, le=100_000_000, description="its price in fen (1/100 yuan)")


class PackageChange(Body):
    price_fen: StrictInt | None = Field(
        default=None, ge=0, le=100_000_000, description="the new price, in fen"
    )
    name: str | None = Field(default=None, min_length=1, max_length=32)


class AliyunKeyRequest(Body):
    access_key_id: str = Field(pattern=ACCESS_KEY_ID)
    secret: SecretStr = Field(
        min_length=16, max_length=128, description="the AccessKey secret (never shown again)"
    )


class WeChatAppRequest(Body):
    appid: str = Field(pattern=APPID)
    secret: SecretStr = Field(
        min_length=8, max_length=64, description="the app's AppSecret (never shown again)"
    )


class PhoneCodeRequest(Body):
    phone: str = Field(
        pattern=r"^(\+86|0086|86|\+)?1[3-9][0-9]{9}$", description="the administrator's mobile"
    )


class ReviewRequest(Body):
    approve: bool
    reason: str | None = Field(default=None, max_length=200)


class TemplateRequest(Body):
    name: str = Field(min_length=1, max_length=30)
    scene: str = Field(max_length=64)
    content: str = Field(min_length=1, max_length=500)
    enabled: bool = True


class SwitchRequest(Body):
    """Optional when turning a scene on: the template to use (a custom one built on a library
    template of the scene, with keyword texts from its variables)."""

    template: Literal["default", "custom"] | None = None
    library_id: str | None = Field(default=None, max_length=32)
    fields: dict[str, str] = Field(default_factory=dict, max_length=20)


class SubscribeTemplates(BaseModel):
    templates: dict[str, str]
    """scene -> the template id to ask for (tmplIds of wx.requestSubscribeMessage, at most 5 a call)"""
    not_offered: list[str]
    """scenes the shop does not send on its Mini Program (off there, or no template)"""


class ChoicesRequest(BuyerNos):
    """What a buyer now refuses, in one scope (``platform``: the platform's token only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChoicesSaved(BaseModel):
    event_id: str
    """the preferences.changed event published"""
    summary: str


class Answered(BaseModel):
    event_id: str
    """the mp_subscription.answered event published"""
