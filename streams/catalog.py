"""The notification catalog (``config/catalog.yaml``) and the shops' rules (``config/shops/*.yaml``).

Both are data, validated when loaded: a template that uses a variable its scene does not have,
or a shop rule on a channel its scene does not allow, is refused with a message naming it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from channels.base import ChannelName
from channels.wechat_values import value_type
from streams.validation import problems as validation_problems

SMS_PARAMETER = re.compile(r"\$\{(\w+)\}")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValueFormat(StrEnum):
    TEXT = "text"
    AMOUNT_FEN = "amount_fen"
    TIME = "time"


class Variable(Frozen):
    label: str
    source: str = Field(pattern=r"^[a-z_]+(\.[a-z_0-9]+)*$", description="dotted path into the event")
    format: ValueFormat = ValueFormat.TEXT
    default: str | None = Field(default=None, description="shown when the event has no value")


class TemplateDefinition(Frozen):
    library_id: str
    title: str
    fields: dict[str, str] = Field(min_length=1)
    link: str | None = Field(default=None, description="OA url or MP page, with {variable} placeholders")

    def placeholders(self) -> set[str]:
        texts = [*self.fields.values(), self.link or ""]
        return {name for text in texts for name in placeholders(text)}


Kind = Literal["basic", "marketing", "verification_code", "seller"]
ONLY_CHANNEL: dict[str, ChannelName] = {
    "marketing": ChannelName.WECHAT_OA,  # 营销通知目前仅支持公众号消息通知
    "verification_code": ChannelName.ALIYUN_SMS,
    "seller": ChannelName.WECHAT_OA,  # 卖家通知仅支持公众号模板消息通知
}
WECHAT = frozenset({ChannelName.WECHAT_OA, ChannelName.WECHAT_MP})


class Scene(Frozen):
    title: str
    audience: Literal["buyer", "seller"]
    kind: Kind
    trigger: str
    when: dict[str, str] = Field(default_factory=dict, description="dotted path -> value the event must have")
    recipient: str = Field(pattern=r"^data\.[a-z_]+$", description="dotted path to the party to notify")
    channels: list[ChannelName] = Field(min_length=1)
    variables: dict[str, Variable]
    default_templates: dict[ChannelName, TemplateDefinition]

    @model_validator(mode="after")
    def _channels_follow_the_product_rules(self) -> Self:
        only = ONLY_CHANNEL.get(self.kind)
        if only is not None and self.channels != [only]:
            raise ValueError(f"channels: {self.kind} notices go by {only.value} only")
        return self

    @model_validator(mode="after")
    def _templates_use_known_variables(self) -> Self:
        for channel, template in self.default_templates.items():
            if channel not in self.channels:
                raise ValueError(f"default_templates.{channel.value}: channel not allowed for this scene")
            unknown = template.placeholders() - self.variables.keys()
            if unknown:
                raise ValueError(f"default_templates.{channel.value}: unknown variables {sorted(unknown)}")
            untyped = [key for key in template.fields if channel in WECHAT and not value_type(key)]
            if untyped:
                raise ValueError(
                    f"default_templates.{channel.value}: keywords without a WeChat type {untyped}"
                )
        return self


class Catalog(Frozen):
    scenes: dict[str, Scene]

    def scenes_for(self, event_type: str, document: Mapping[str, Any]) -> list[tuple[str, Scene]]:
        """The scenes an event fires: its type is their trigger and it has their ``when`` values."""
        return [
            (scene_id, scene)
            for scene_id, scene in self.scenes.items()
            if scene.trigger == event_type
            and all(str(lookup(document, path)) == value for path, value in scene.when.items())
        ]


class ChannelRule(Frozen):
    """A shop's choice for one scene on one channel."""

    enabled: bool = False
    template: Literal["default", "custom"] = "default"
    template_id: str | None = Field(default=None, description="WeChat template id (SMS: see sms_templates)")
    fields: dict[str, str] = Field(
        default_factory=dict, description="custom: keyword -> text with {variables}"
    )
    disabled_reason: str | None = Field(default=None, description="why the system turned it off")


class SmsTemplate(Frozen):
    """An SMS template as approved on Aliyun (模板设置-短信模板)."""

    name: str = Field(min_length=1)
    scene: str = Field(description="send condition: the scene it is sent for")
    template_code: str = Field(pattern=r"^SMS_\d+$")
    content: str = Field(min_length=1, description="as approved on Aliyun, with ${variable} parameters")
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
    shop_id: int = Field(gt=0)
    name: str
    wechat_oa: WeChatAccount | None = None
    wechat_mp: WeChatAccount | None = None
    sms: SmsAccount | None = None
    sms_templates: list[SmsTemplate] = Field(default_factory=list)
    scenes: dict[str, dict[ChannelName, ChannelRule]] = Field(default_factory=dict)

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


def lookup(document: Mapping[str, Any], path: str) -> object | None:
    """Follow a dotted path (``data.buyer.user_id``) into nested mappings; None when absent."""
    node: object = document
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


class ConfigError(Exception):
    """A configuration file is invalid; the message names the file and the field."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(f"{where}: " + "; ".join(problems))
        self.problems = problems


def placeholders(text: str) -> list[str]:
    """The {variable} names in a template text."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def _load_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), [str(exc)]) from None


def _describe(path: Path, exc: ValidationError) -> ConfigError:
    return ConfigError(str(path), validation_problems(exc))


def load_catalog(path: Path) -> Catalog:
    document = _load_yaml(path)
    if isinstance(document, dict):  # top-level keys starting with _ only hold YAML anchors
        document = {key: value for key, value in document.items() if not str(key).startswith("_")}
    try:
        return Catalog.model_validate(document)
    except ValidationError as exc:
        raise _describe(path, exc) from None


def parse_shop_rules(document: object, catalog: Catalog, where: str) -> ShopRules:
    """A shop's rules from a document, checked against the catalog; ConfigError names every problem."""
    from streams.shop_checks import shop_problems

    try:
        shop = ShopRules.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(where, validation_problems(exc)) from None
    broken = shop_problems(shop, catalog)
    if broken:
        raise ConfigError(where, broken)
    return shop


def load_shop_rules(directory: Path, catalog: Catalog) -> dict[int, ShopRules]:
    """Every ``*.yaml`` in ``directory``, checked against the catalog."""
    shops: dict[int, ShopRules] = {}
    for path in sorted(directory.glob("*.yaml")):
        shop = parse_shop_rules(_load_yaml(path), catalog, str(path))
        shops[shop.shop_id] = shop
    return shops
