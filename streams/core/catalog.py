"""The notification catalog (``config/catalog.yaml``): scenes, their variable libraries and default
templates. Data, validated when loaded: a template that uses a variable its scene does not have,
or a channel a scene's kind does not allow, is refused with a message naming it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from channels.base import ChannelName
from channels.wechat_values import value_type
from streams.core.errors import ConfigError
from streams.core.validation import UnreadableFile, read_yaml
from streams.core.validation import problems as validation_problems


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValueFormat(StrEnum):
    TEXT = "text"
    AMOUNT_FEN = "amount_fen"
    TIME = "time"


SmsRule = Literal[
    "numberCaptcha", "characterWithNumber2", "phone_number2", "time", "money", "name", "other_number2"
]
"""CreateSmsTemplate's TemplateRule attributes (https://help.aliyun.com/document_detail/2806243.html)"""


class Variable(Frozen):
    label: str
    source: str = Field(pattern=r"^[a-z_]+(\.[a-z_0-9]+)*$", description="dotted path into the event")
    format: ValueFormat = ValueFormat.TEXT
    default: str | None = Field(default=None, description="shown when the event has no value")
    sms_rule: SmsRule | None = Field(
        default=None,
        description="what Aliyun is told the variable holds in an SMS template (TemplateRule); "
        "by default: money for amounts, time for times, other_number2 for texts",
    )


class TemplateDefinition(Frozen):
    library_id: str
    title: str
    fields: dict[str, str] = Field(min_length=1)
    link: str | None = Field(default=None, description="OA url or MP page, with {variable} placeholders")

    def placeholders(self) -> set[str]:
        texts = [*self.fields.values(), self.link or ""]
        return {name for text in texts for name in placeholders(text)}


class LibraryTemplate(Frozen):
    """A template of WeChat's public library a custom template can be built on: its keywords are
    filled with the scene's variables (OA: ``api_add_template``; MP: the title ``tid`` with the
    keyword ids, ``thing2`` being id 2)."""

    library_id: str
    title: str
    keywords: list[str] = Field(min_length=1, max_length=10)


Kind = Literal["basic", "marketing", "verification_code", "seller"]
Category = Literal["transactional", "security", "marketing"]
CATEGORY_OF_KIND: dict[str, Category] = {
    "basic": "transactional",
    "seller": "transactional",
    "marketing": "marketing",
    "verification_code": "security",
}
"""what a buyer may refuse or defer (marketing), must always get (security), or gets as a matter of
course (transactional), by the manual's kind of notice"""
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
    category: Category
    trigger: str
    when: dict[str, str] = Field(
        default_factory=dict,
        description='dotted path -> value the event must have ("true"/"false" for yes/no)',
    )
    recipient: str = Field(pattern=r"^data\.[a-z_]+$", description="dotted path to the party to notify")
    valid_until: str | None = Field(
        default=None,
        pattern=r"^data\.[a-z_]+$",
        description="dotted path to the time the notice stops being worth sending (a coupon's end): "
        "one held by quiet hours past it ends skipped as expired",
    )
    channels: list[ChannelName] = Field(min_length=1)
    variables: dict[str, Variable]
    default_templates: dict[ChannelName, TemplateDefinition]
    library: dict[ChannelName, list[LibraryTemplate]] = Field(
        default_factory=dict,
        description="WeChat: more library templates a custom template may pick (the default one always can)",
    )

    def library_templates(self, channel: ChannelName) -> list[LibraryTemplate]:
        """The library templates a shop may use on a WeChat channel: the default one first."""
        default = self.default_templates.get(channel)
        if default is None or channel not in WECHAT:
            return []
        first = LibraryTemplate(
            library_id=default.library_id, title=default.title, keywords=list(default.fields)
        )
        return [first, *self.library.get(channel, [])]

    def library_template(self, channel: ChannelName, library_id: str | None) -> LibraryTemplate | None:
        """The library template ``library_id`` (None: the default one), if the scene offers it."""
        offered = self.library_templates(channel)
        if library_id is None:
            return offered[0] if offered else None
        return next((t for t in offered if t.library_id == library_id), None)

    @model_validator(mode="after")
    def _category_follows_the_kind(self) -> Self:
        expected = CATEGORY_OF_KIND[self.kind]
        if self.category != expected:
            raise ValueError(f"category: a {self.kind} notice is {expected}")
        return self

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
        for channel, offered in self.library.items():
            if channel not in WECHAT or channel not in self.default_templates:
                raise ValueError(f"library.{channel.value}: only WeChat channels with a default template")
            untyped = [k for template in offered for k in template.keywords if not value_type(k)]
            if untyped:
                raise ValueError(f"library.{channel.value}: keywords without a WeChat type {untyped}")
        return self


class OaLibraryEntry(Frozen):
    """A template of the Official Account's libraries as ``api_add_template`` takes it: a numeric
    id for the category template library (类目模板库, where WeChat sends new services since 2023),
    ``TM…``/``OPENTM…`` for the older industry library; its keywords by code, each with the Chinese
    name the call must give (https://developers.weixin.qq.com/doc/service/api/notify/template/api_addtemplate:
    keyword_name_list, the names in order; anything else is refused with 40246)."""

    title: str
    keywords: dict[str, Annotated[str, Field(min_length=1, max_length=20)]] = Field(
        min_length=1, max_length=10
    )
    """keyword code (``character_string1``) -> its name in the library (``订单编号``)"""


class Catalog(Frozen):
    scenes: dict[str, Scene]
    wechat_oa_library: dict[
        Annotated[str, Field(pattern=r"^(\d{1,10}|(OPEN)?TM\d{1,12})$")], OaLibraryEntry
    ] = Field(
        default_factory=dict,
        description="the Official Account library templates the scenes use, with their keywords' names",
    )

    def keyword_names(self, library_id: str, keywords: list[str]) -> list[str]:
        """The names ``api_add_template`` is given for these keyword codes of an OA library template."""
        entry = self.wechat_oa_library[library_id]
        return [entry.keywords[keyword] for keyword in keywords]

    @model_validator(mode="after")
    def _oa_templates_are_in_the_library(self) -> Self:
        """Every OA template a scene offers is in ``wechat_oa_library``, with every keyword named."""
        for scene_id, scene in self.scenes.items():
            for template in scene.library_templates(ChannelName.WECHAT_OA):
                entry = self.wechat_oa_library.get(template.library_id)
                where = f"scenes.{scene_id}.wechat_oa {template.library_id}"
                if entry is None:
                    raise ValueError(f"{where}: not in wechat_oa_library (its keywords' names are needed)")
                unnamed = [keyword for keyword in template.keywords if keyword not in entry.keywords]
                if unnamed:
                    raise ValueError(f"{where}: keywords {unnamed} are not in the library template")
        return self

    def scenes_for(self, event_type: str, document: Mapping[str, Any]) -> list[tuple[str, Scene]]:
        """The scenes an event fires: its type is their trigger and it has their ``when`` values."""
        return [
            (scene_id, scene)
            for scene_id, scene in self.scenes.items()
            if scene.trigger == event_type
            and all(when_text(lookup(document, path)) == value for path, value in scene.when.items())
        ]


def when_text(value: object) -> str:
    """An event's value as a ``when`` condition spells it: ``true``/``false`` for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lookup(document: Mapping[str, Any], path: str) -> object | None:
    """Follow a dotted path (``data.buyer.user_id``) into nested mappings; None when absent."""
    node: object = document
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def placeholders(text: str) -> list[str]:
    """The {variable} names in a template text."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def load_yaml(path: Path) -> object:
    """A YAML file as Python data; ConfigError names the file (and line) when it cannot be read."""
    try:
        return read_yaml(path)
    except UnreadableFile as exc:
        where, _, problem = str(exc).partition(": ")
        raise ConfigError(where, [problem]) from None


def _describe(path: Path, exc: ValidationError) -> ConfigError:
    return ConfigError(str(path), validation_problems(exc))


def load_catalog(path: Path) -> Catalog:
    document = load_yaml(path)
    if isinstance(document, dict):  # top-level keys starting with _ only hold YAML anchors
        document = {key: value for key, value in document.items() if not str(key).startswith("_")}
    try:
        return Catalog.model_validate(document)
    except ValidationError as exc:
        raise _describe(path, exc) from None
