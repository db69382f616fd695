"""The bodies the admin API's SMS and Mini Program endpoints take and answer (and its OpenAPI
document describes)."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


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


class ChoicesRequest(Body):
    """What a buyer now refuses, in one scope: the whole of it, replacing what was said before."""

    scope: Literal["shop", "platform"] = Field(
        default="shop", description="shop: this shop only; platform: every shop (the platform's token only)"
    )
    categories_off: list[Literal["transactional", "marketing"]] = Field(
        default_factory=list,
        max_length=2,
        description="transactional (orders, refunds, wallet), marketing (coupons); security notices "
        "(verification codes) cannot be refused",
    )
    channels_off: list[Literal["wechat_oa", "wechat_mp", "aliyun_sms"]] = Field(
        default_factory=list, max_length=3
    )


class ChoicesSaved(BaseModel):
    event_id: str
    """the preferences.changed event published"""
    summary: str


class Answered(BaseModel):
    event_id: str
    """the mp_subscription.answered event published"""
