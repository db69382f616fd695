"""The notification catalog (``config/catalog.yaml``) and the shops' rules (``config/shops/*.yaml``).

Both are data, validated when loaded: a template that uses a variable its scene does not have,
or a shop rule on a channel its scene does not allow, is refused with a message naming it.
"""

from __future__ import annotations

import string
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from channels.base import ChannelName
from channels.wechat_values import value_type
from streams.validation import describe


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


class TemplateDefinition(Frozen):
    library_id: str
    title: str
    fields: dict[str, str] = Field(min_length=1)

    def placeholders(self) -> set[str]:
        return {name for text in self.fields.values() for name in _placeholders(text)}


class Scene(Frozen):
    title: str
    audience: Literal["buyer", "seller"]
    kind: Literal["basic", "marketing", "verification_code", "seller"]
    trigger: str
    channels: list[ChannelName] = Field(min_length=1)
    variables: dict[str, Variable]
    default_templates: dict[ChannelName, TemplateDefinition]

    @model_validator(mode="after")
    def _templates_use_known_variables(self) -> Self:
        for channel, template in self.default_templates.items():
            if channel not in self.channels:
                raise ValueError(f"default_templates.{channel.value}: channel not allowed for this scene")
            unknown = template.placeholders() - self.variables.keys()
            if unknown:
                raise ValueError(f"default_templates.{channel.value}: unknown variables {sorted(unknown)}")
            untyped = [
                key for key in template.fields if channel is ChannelName.WECHAT_OA and not value_type(key)
            ]
            if untyped:
                raise ValueError(
                    f"default_templates.{channel.value}: keywords without a WeChat type {untyped}"
                )
        return self


class Catalog(Frozen):
    scenes: dict[str, Scene]

    def scenes_for(self, event_type: str) -> list[tuple[str, Scene]]:
        return [(scene_id, scene) for scene_id, scene in self.scenes.items() if scene.trigger == event_type]


class ChannelRule(Frozen):
    enabled: bool = False
    template: Literal["default"] = "default"
    template_id: str = Field(min_length=1)


class WeChatAccount(Frozen):
    appid: str = Field(pattern=r"^wx[0-9a-zA-Z]{8,30}$")


class ShopRules(Frozen):
    shop_id: int = Field(gt=0)
    name: str
    wechat_oa: WeChatAccount | None = None
    scenes: dict[str, dict[ChannelName, ChannelRule]] = Field(default_factory=dict)

    def rule(self, scene_id: str, channel: ChannelName) -> ChannelRule | None:
        return self.scenes.get(scene_id, {}).get(channel)


class ConfigError(Exception):
    """A configuration file is invalid; the message names the file and the field."""


def _placeholders(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def _load_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _describe(path: Path, exc: ValidationError) -> ConfigError:
    return ConfigError(f"{path}: {describe(exc)}")


def load_catalog(path: Path) -> Catalog:
    try:
        return Catalog.model_validate(_load_yaml(path))
    except ValidationError as exc:
        raise _describe(path, exc) from None


def load_shop_rules(directory: Path, catalog: Catalog) -> dict[int, ShopRules]:
    """Every ``*.yaml`` in ``directory``, checked against the catalog."""
    shops: dict[int, ShopRules] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            shop = ShopRules.model_validate(_load_yaml(path))
        except ValidationError as exc:
            raise _describe(path, exc) from None
        _check_against_catalog(path, shop, catalog)
        shops[shop.shop_id] = shop
    return shops


def _check_against_catalog(path: Path, shop: ShopRules, catalog: Catalog) -> None:
    for scene_id, channels in shop.scenes.items():
        scene = catalog.scenes.get(scene_id)
        if scene is None:
            raise ConfigError(f"{path}: scenes.{scene_id}: no such scene in the catalog")
        for channel in channels:
            if channel not in scene.channels:
                raise ConfigError(
                    f"{path}: scenes.{scene_id}.{channel.value}: channel not allowed for this scene"
                )
            if channel is ChannelName.WECHAT_OA and shop.wechat_oa is None:
                raise ConfigError(
                    f"{path}: scenes.{scene_id}.{channel.value}: the shop has no wechat_oa.appid"
                )
