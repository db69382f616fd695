"""A shop's notification settings: per scene and channel on/off and template, its provider
accounts and its SMS templates. The models only; what a shop may save is ``shop_checks``."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from channels.base import ChannelName
from streams.core.catalog import Frozen
from streams.core.quiet_hours import Window, check_window, minute_of, zone_of

SMS_PARAMETER = re.compile(r"\$\{(\w+)\}")


class ChannelRule(Frozen):
    """A shop's choice for one scene on one channel."""

    enabled: bool = False
    template: Literal["default", "custom"] = "default"
    library_id: str | None = Field(
        default=None,
        max_length=32,
        description="custom: the library template it is built on (one the catalog offers for the scene); "
        "none: the default one",
    )
    template_id: str | None = Field(
        default=None, max_length=128, description="WeChat template id (SMS: see sms_templates)"
    )
    fields: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=20, description="custom: keyword -> text with {variables}"
    )
    disabled_reason: str | None = Field(
        default=None, max_length=200, description="why the system turned it off"
    )


ReviewStatus = Literal["reviewing", "approved", "rejected"]
"""Aliyun's review of a signature or template"""


class SmsTemplate(Frozen):
    """An SMS template submitted to Aliyun (模板设置-短信模板); sent only once Aliyun approved it."""

    name: str = Field(min_length=1, max_length=30)
    scene: str = Field(max_length=64, description="send condition: the scene it is sent for")
    template_code: str = Field(pattern=r"^SMS_[0-9]{1,20}$", description="the code Aliyun gave it")
    content: str = Field(
        min_length=1, max_length=500, description="as submitted to Aliyun, with ${variable} parameters"
    )
    enabled: bool = True
    status: ReviewStatus = Field(
        default="reviewing", description="Aliyun's review (GetSmsTemplate, TemplateSmsReport)"
    )
    reason: str | None = Field(default=None, max_length=200, description="why Aliyun rejected it")

    def parameters(self) -> list[str]:
        return SMS_PARAMETER.findall(self.content)

    def as_text(self) -> str:
        """The content as a template text: ``${code}`` -> ``{code}``, literal braces doubled."""
        pieces = SMS_PARAMETER.split(self.content)  # literal, name, literal, name, ..., literal
        return "".join(
            f"{{{piece}}}" if index % 2 else piece.replace("{", "{{").replace("}", "}}")
            for index, piece in enumerate(pieces)
        )


class WeChatAccount(Frozen):
    appid: str = Field(pattern=r"^wx[0-9a-zA-Z]{8,30}$")


SignatureStatus = Literal["reviewing", "submitted", "approved", "rejected"]
"""reviewing: the platform has not decided; submitted: the platform approved and Aliyun reviews it"""


class Signature(Frozen):
    """An SMS signature the shop applied for (短信签名), as the platform and Aliyun reviewed it."""

    name: str = Field(min_length=2, max_length=12, pattern=r"^[A-Za-z0-9\u4e00-\u9fff]+$")
    status: SignatureStatus = "reviewing"
    reason: str | None = Field(default=None, max_length=200, description="why it was rejected")
    applied_at: datetime | None = None
    changed_at: datetime | None = None
    order_id: str | None = Field(
        default=None, max_length=64, description="Aliyun's review order (CreateSmsSign)"
    )


QualificationState = Literal["reviewing", "approved", "rejected", "incomplete", "withdrawn"]


class Qualification(Frozen):
    """What the platform keeps of the merchant's qualification (资质) submitted to Aliyun for its
    signatures: the company, never the people (their ID numbers and phone went to Aliyun only)."""

    name: str = Field(min_length=1, max_length=100, description="QualificationName, unique on the account")
    qualification_id: int = Field(ge=1, description="Aliyun's id of it (SubmitSmsQualification)")
    company_name: str = Field(min_length=2, max_length=150)
    organization_code: str = Field(min_length=15, max_length=150, description="统一社会信用代码")
    status: QualificationState = "reviewing"
    reason: str | None = Field(default=None, max_length=500, description="Aliyun's remark on a refusal")
    submitted_at: datetime
    changed_at: datetime


class AuthorizationLetter(Frozen):
    """The merchant's authorization letter (授权委托书): the platform may sign with these names."""

    letter_id: int = Field(ge=1, description="Aliyun's id of it (CreateSmsAuthorizationLetter)")
    name: str = Field(min_length=1, max_length=100)
    signatures: list[str] = Field(min_length=1, max_length=100)
    valid_from: date
    valid_until: date
    created_at: datetime


class SmsAccount(Frozen):
    signatures: list[Signature] = Field(default_factory=list, max_length=20)
    active: str | None = Field(default=None, description="the approved signature every SMS is sent with")
    qualification: Qualification | None = Field(
        default=None, description="the merchant's company, as Aliyun reviewed it (platform only)"
    )
    letter: AuthorizationLetter | None = Field(
        default=None, description="the merchant's authorization letter for its signatures (platform only)"
    )

    def signature(self, name: str) -> Signature | None:
        return next((s for s in self.signatures if s.name == name), None)

    def active_signature(self) -> str | None:
        active = self.signature(self.active) if self.active else None
        return active.name if active is not None and active.status == "approved" else None


LOW_BALANCE_DEFAULT = 100
"""segments left below which a shop's seller is told, unless the shop says otherwise"""


DAILY_MARKETING_CAP = 3
"""marketing notices a buyer gets from one shop a day, unless the shop says otherwise"""
CappedCategory = Literal["transactional", "marketing"]
"""the categories of notice a shop may cap (security notices are never held back)"""


def _default_caps() -> dict[CappedCategory, int]:
    return {"marketing": DAILY_MARKETING_CAP}


def _held_by_default() -> list[CappedCategory]:
    return ["marketing"]


class QuietHours(Frozen):
    """The shop's night: notices of the categories named wait until it ends (security notices,
    the verification codes, are never held)."""

    start: str = Field(default="22:00", description="HH:MM, in time_zone")
    end: str = Field(default="08:00", description="HH:MM, in time_zone; before start: the next day")
    time_zone: str = Field(default="Asia/Shanghai", description="an IANA time zone")
    categories: list[CappedCategory] = Field(
        default_factory=_held_by_default,
        max_length=2,
        description="the categories held until the window ends (transactional notices are sent "
        "at once unless named here)",
    )

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        minute_of(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone_of(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        check_window(self.start, self.end, "set quiet_hours to null")
        return self

    def window(self) -> Window:
        return Window(minute_of(self.start), minute_of(self.end), self.time_zone)


FALLBACK_ORDER = (ChannelName.WECHAT_OA, ChannelName.WECHAT_MP, ChannelName.ALIYUN_SMS)


class Fallback(Frozen):
    """How a buyer's notice of one scene uses the shop's channels: ``all`` of them (each one the
    shop enabled), or the ``first_reachable`` in ``order``: the next one only when the one before
    answered that it cannot reach the buyer (not following, no subscription, blocked)."""

    policy: Literal["all", "first_reachable"] = "first_reachable"
    order: list[ChannelName] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="the channels in the order they are tried (first_reachable), each only where the "
        "shop enabled it for the scene; an enabled one not named is tried last. None: the Official "
        "Account, then the Mini Program, then SMS",
    )

    @field_validator("order")
    @classmethod
    def _once_each(cls, order: list[ChannelName] | None) -> list[ChannelName] | None:
        if order is None:
            return order
        if len(set(order)) != len(order):
            raise ValueError("each channel once")
        if ChannelName.WEBHOOK in order:
            raise ValueError("webhook is the shop's own, not a buyer's channel")
        return order


class ShopRules(Frozen):
    shop_id: int = Field(gt=0, lt=10**18)
    name: str = Field(min_length=1, max_length=64)
    wechat_oa: WeChatAccount | None = None
    wechat_mp: WeChatAccount | None = None
    sms: SmsAccount | None = None
    sms_templates: list[SmsTemplate] = Field(default_factory=list, max_length=100)
    sms_low_balance: int = Field(
        default=LOW_BALANCE_DEFAULT,
        ge=0,
        le=10**9,
        description="when the SMS balance falls below this many segments, the seller is told "
        "(scene seller_sms_balance_low, once per crossing); 0: never",
    )
    daily_caps: dict[CappedCategory, Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=_default_caps,
        description="per category of notice: how many a buyer gets from the shop a day (the mall's "
        "day, Asia/Shanghai), at most; the next ones end skipped as frequency_cap. A category not "
        "named has no cap",
    )
    quiet_hours: QuietHours | None = Field(
        default_factory=QuietHours,
        description="the shop's quiet hours (default 22:00-08:00 Asia/Shanghai, marketing held); "
        "null: none. A buyer's own window (preferences) replaces the times",
    )
    fallback: dict[Annotated[str, Field(max_length=64)], Fallback] = Field(
        default_factory=dict,
        max_length=100,
        description="per buyer scene: all its enabled channels (the default), or the first that "
        "reaches the buyer, in order (policy first_reachable)",
    )
    seller_openid: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="the shop owner's openid under the shop's Official Account: where the "
        "platform's notices to the seller go (SMS balance low); kept sealed with the platform's "
        "recipient key once saved",
    )
    scenes: dict[Annotated[str, Field(max_length=64)], dict[ChannelName, ChannelRule]] = Field(
        default_factory=dict, max_length=100
    )

    def sms_template(self, scene_id: str) -> SmsTemplate | None:
        """The scene's enabled SMS template (approved or not; at most one, see shop_checks)."""
        return next((t for t in self.sms_templates if t.scene == scene_id and t.enabled), None)

    def rule(self, scene_id: str, channel: ChannelName) -> ChannelRule | None:
        return self.scenes.get(scene_id, {}).get(channel)

    def using_template(self, template_id: str) -> list[tuple[str, ChannelName]]:
        """The scene x channel rules that use a WeChat template."""
        return [
            (scene, channel)
            for scene, rules in self.scenes.items()
            for channel, rule in rules.items()
            if rule.template_id == template_id
        ]

    def account(self, channel: ChannelName) -> str | None:
        """The shop's provider account on a channel: OA / MP appid, or SMS signature."""
        accounts = {
            ChannelName.WECHAT_OA: self.wechat_oa.appid if self.wechat_oa else None,
            ChannelName.WECHAT_MP: self.wechat_mp.appid if self.wechat_mp else None,
            ChannelName.ALIYUN_SMS: self.sms.active_signature() if self.sms else None,
        }
        return accounts[channel]
