"""A shop's notification settings: per scene and channel on/off and template, its provider
accounts and its SMS templates. The models only; what a shop may save is ``shop_checks``."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from channels.base import ChannelName
from streams.core.catalog import Frozen

SMS_PARAMETER = re.compile(r"\$\{(\w+)\}")


class ChannelRule(Frozen):
    """A shop's choice for one scene on one channel."""

    enabled: bool = False
    template: Literal["default", "custom"] = "default"
    template_id: str | None = Field(
        default=None, max_length=128, description="WeChat template id (SMS: see sms_templates)"
    )
    fields: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=20, description="custom: keyword -> text with {variables}"
    )
    disabled_reason: str | None = Field(
        default=None, max_length=200, description="why the system turned it off"
    )


class SmsTemplate(Frozen):
    """An SMS template as approved on Aliyun (模板设置-短信模板)."""

    name: str = Field(min_length=1, max_length=30)
    scene: str = Field(max_length=64, description="send condition: the scene it is sent for")
    template_code: str = Field(pattern=r"^SMS_\d{1,20}$")
    content: str = Field(
        min_length=1, max_length=500, description="as approved on Aliyun, with ${variable} parameters"
    )
    enabled: bool = True

    def parameters(self) -> list[str]:
        return SMS_PARAMETER.findall(self.content)


class WeChatAccount(Frozen):
    appid: str = Field(pattern=r"^wx[0-9a-zA-Z]{8,30}$")


class SmsAccount(Frozen):
    signature: str = Field(
        min_length=2, max_length=12, description="the shop's active, approved SMS signature"
    )


class ShopRules(Frozen):
    shop_id: int = Field(gt=0, lt=10**18)
    name: str = Field(min_length=1, max_length=64)
    wechat_oa: WeChatAccount | None = None
    wechat_mp: WeChatAccount | None = None
    sms: SmsAccount | None = None
    sms_templates: list[SmsTemplate] = Field(default_factory=list, max_length=100)
    scenes: dict[Annotated[str, Field(max_length=64)], dict[ChannelName, ChannelRule]] = Field(
        default_factory=dict, max_length=100
    )

    def sms_template(self, scene_id: str) -> SmsTemplate | None:
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
            ChannelName.ALIYUN_SMS: self.sms.signature if self.sms else None,
        }
        return accounts[channel]
