"""Turning a scene on or off on a channel, or changing its template, as the admin API and
``mall-notify settings set`` both do it (模板设置-微信模板: "若使用系统默认消息通知选择开启, 系统会自动
获取微信公众平台对应的消息模板").

A WeChat scene turned on without a template of the account (or moved to another library template)
gets one: the new settings are validated first; then the account's setup is checked against the
manual (the OA's industries, the MP's service category) and its real template list against
WeChat's limit of 25; only then is the template added (OA ``api_add_template``, MP
``newtmpl/addtemplate``) and its id kept. The caller saves the settings, and calls ``undo`` when
that fails, so a refused save leaves no unused template on the account.

Errors: :class:`~streams.core.sms_signatures.Refused` (the account's setup, its 25 templates),
:class:`~streams.core.errors.ConfigError` (the settings would be invalid), and
:class:`~channels.wechat.CallFailed` (WeChat refused or did not answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from channels.base import ChannelName
from channels.http import SharedSession
from channels.wechat import WeChatApi
from channels.wechat_templates import AccountTemplates, MpTemplates, OaTemplates
from streams.core.catalog import WECHAT, Catalog
from streams.core.errors import ConfigError
from streams.core.shop_checks import MAX_ACCOUNT_TEMPLATES, parse_shop_rules
from streams.core.shops import ChannelRule, ShopRules
from streams.core.sms_signatures import Refused
from streams.settings import Settings

PLACEHOLDER_TEMPLATE_ID = "to-be-added"
"""a template id while the settings are checked, before WeChat gives the real one"""


def wechat_accounts(
    settings: Settings, session: SharedSession, secrets: Mapping[str, SecretStr] | None = None
) -> dict[ChannelName, AccountTemplates]:
    """The template calls of the shops' Official Accounts and Mini Programs, per channel, with the
    apps' ``secrets`` (the registered ones; the development seed when not given)."""
    known = settings.wechat_secrets if secrets is None else secrets
    oa = WeChatApi(str(settings.wechat_oa_api_base), known, session)
    mp = WeChatApi(str(settings.wechat_mp_api_base), known, session)
    return {ChannelName.WECHAT_OA: OaTemplates(oa), ChannelName.WECHAT_MP: MpTemplates(mp)}


@dataclass(frozen=True)
class RuleChange:
    """What to change of one scene x channel; None leaves it as it is."""

    enabled: bool | None = None
    template: str | None = None
    library_id: str | None = None
    template_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    """custom keyword texts to set (the others stay)"""


@dataclass(frozen=True)
class Switched:
    shop: ShopRules
    undo: Callable[[], Awaitable[None]] | None = None
    """deletes the template added for this change (call it when saving fails)"""
    added: str | None = None
    """the id of the template added to the account"""


def changed_document(
    shop: ShopRules, catalog: Catalog, scene_id: str, channel: ChannelName, change: RuleChange
) -> dict[str, Any]:
    """The shop's settings with one rule changed (not validated yet)."""
    scene = catalog.scenes.get(scene_id)
    if scene is None or channel not in scene.channels:
        where = f"scenes.{scene_id[:64]}.{channel.value}"
        raise ConfigError(f"shop {shop.shop_id}", [f"{where}: no such scene, or channel not allowed for it"])
    document = shop.model_dump(mode="json")
    rule = document["scenes"].setdefault(scene_id, {}).setdefault(channel.value, {})
    updates = {
        "enabled": change.enabled,
        "template": change.template,
        "library_id": change.library_id,
        "template_id": change.template_id,
    }
    rule.update({key: value for key, value in updates.items() if value is not None})
    if change.enabled is not None:
        rule["disabled_reason"] = None
    if rule.get("template") == "custom" and not rule.get("fields"):
        library = scene.library_template(channel, rule.get("library_id"))
        default = scene.default_templates.get(channel)
        if library is not None and default is not None and library.library_id == default.library_id:
            rule["fields"] = dict(default.fields)  # start from the system default's contents
    rule.setdefault("fields", {}).update(change.fields)
    return document


def _library(rule: ChannelRule | None) -> str | None:
    """Which library template a rule's template id is for (None: the default one)."""
    return rule.library_id if rule is not None and rule.template == "custom" else None


async def switch(
    shop: ShopRules,
    catalog: Catalog,
    scene_id: str,
    channel: ChannelName,
    change: RuleChange,
    accounts: Callable[[ChannelName], AccountTemplates],
) -> Switched:
    """The shop's new settings, with a template added to the account when the rule needs one."""
    document = changed_document(shop, catalog, scene_id, channel, change)
    rule = ChannelRule.model_validate(document["scenes"][scene_id][channel.value])
    before = shop.rule(scene_id, channel)
    needs_template = (
        channel in WECHAT
        and rule.enabled
        and change.template_id is None
        and (rule.template_id is None or _library(rule) != _library(before))
    )
    if not needs_template:
        return Switched(parse_shop_rules(document, catalog, f"shop {shop.shop_id}"))
    document["scenes"][scene_id][channel.value]["template_id"] = PLACEHOLDER_TEMPLATE_ID
    parse_shop_rules(document, catalog, f"shop {shop.shop_id}")  # refused before WeChat is asked
    appid = shop.account(channel)
    if appid is None:
        raise Refused(f"{channel.value}: the shop has no account; the platform sets its appid first")
    templates = accounts(channel)
    wrong = await templates.misconfigured(appid)
    if wrong is not None:
        raise Refused(wrong)
    held = await templates.list(appid)
    if len(held) >= MAX_ACCOUNT_TEMPLATES:
        raise Refused(
            f"the shop's {channel.value} account holds {len(held)} templates, WeChat's limit: delete "
            "templates the shop no longer uses (GET .../templates shows which) and try again"
        )
    library = catalog.scenes[scene_id].library_template(channel, _library(rule))
    if library is None:  # cannot happen: the settings were validated, and name an offered one
        raise Refused(f"scenes.{scene_id}.{channel.value}: no library template to add")
    keywords = (
        catalog.keyword_names(library.library_id, library.keywords)
        if channel is ChannelName.WECHAT_OA
        else library.keywords
    )
    template_id = await templates.add(appid, library.library_id, keywords)
    document["scenes"][scene_id][channel.value]["template_id"] = template_id

    async def undo() -> None:
        await templates.delete(appid, template_id)

    return Switched(parse_shop_rules(document, catalog, f"shop {shop.shop_id}"), undo, template_id)
