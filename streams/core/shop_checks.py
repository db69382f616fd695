"""What a shop may save: every rule it breaks, each message naming the field. Pure.

Checked on save (admin API, `settings load|set`) and when files load, so that a bad setting is
refused with a reason instead of surprising anyone at send time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from channels.base import ChannelName
from channels.wechat_values import problem
from streams.core.catalog import WECHAT, Catalog, Scene, ValueFormat, load_yaml, placeholders
from streams.core.errors import ConfigError
from streams.core.rendering import format_value, render_text
from streams.core.shops import ChannelRule, ShopRules
from streams.core.validation import problems as validation_problems

MAX_ACCOUNT_TEMPLATES = 25
"""templates an Official Account or a Mini Program holds at most (checked on its real list)"""
MAX_SIGNATURES = 10
SAMPLE = {
    ValueFormat.AMOUNT_FEN: format_value(1, ValueFormat.AMOUNT_FEN),
    ValueFormat.TIME: format_value(datetime(2026, 1, 1, tzinfo=UTC), ValueFormat.TIME),
    ValueFormat.TEXT: "x",
}


def shop_problems(shop: ShopRules, catalog: Catalog) -> list[str]:
    problems: list[str] = []
    for scene_id, channels in shop.scenes.items():
        scene = catalog.scenes.get(scene_id)
        if scene is None:
            problems.append(f"scenes.{scene_id}: no such scene in the catalog")
            continue
        for channel, rule in channels.items():
            where = f"scenes.{scene_id}.{channel.value}"
            problems += [
                f"{where}: {message}" for message in _rule_problems(shop, scene_id, scene, channel, rule)
            ]
    problems += _sms_template_problems(shop, catalog)
    problems += _fallback_problems(shop, catalog)
    return problems


def _fallback_problems(shop: ShopRules, catalog: Catalog) -> list[str]:
    problems = []
    for scene_id, fallback in shop.fallback.items():
        scene = catalog.scenes.get(scene_id)
        if scene is None or scene.audience != "buyer" or scene.category == "security":
            problems.append(f"fallback.{scene_id}: not a buyer's notice of the catalog (codes go by SMS)")
            continue
        foreign = [channel.value for channel in fallback.order or [] if channel not in scene.channels]
        if foreign:
            allowed = ", ".join(channel.value for channel in scene.channels)
            problems.append(
                f"fallback.{scene_id}.order: {', '.join(foreign)} not a channel of it ({allowed})"
            )
    return problems


def _rule_problems(
    shop: ShopRules, scene_id: str, scene: Scene, channel: ChannelName, rule: ChannelRule
) -> list[str]:
    if channel not in scene.channels:
        return ["channel not allowed for this scene"]
    if channel in WECHAT and shop.account(channel) is None:
        return [f"the shop has no {channel.value} account"]
    if not rule.enabled:
        return []
    if channel is ChannelName.ALIYUN_SMS:
        return (
            [] if shop.sms_template(scene_id) else ["no enabled SMS template for this scene (sms_templates)"]
        )
    problems = [] if rule.template_id else ["template_id: missing"]
    if rule.template == "custom":
        problems += _custom_field_problems(scene, channel, rule)
    elif rule.library_id is not None:
        problems.append("library_id: only a custom template picks a library template")
    return problems


def _custom_field_problems(scene: Scene, channel: ChannelName, rule: ChannelRule) -> list[str]:
    library = scene.library_template(channel, rule.library_id)
    if library is None:
        offered = ", ".join(f"{t.library_id} ({t.title})" for t in scene.library_templates(channel))
        return [f"library_id: {rule.library_id} is not a library template of this scene (offered: {offered})"]
    keywords = library.keywords
    problems = [
        f"fields.{keyword}: template field missing" for keyword in keywords if keyword not in rule.fields
    ]
    problems += [
        f"fields.{keyword}: not a field of this template"
        for keyword in rule.fields
        if keyword not in keywords
    ]
    samples = {name: SAMPLE[variable.format] for name, variable in scene.variables.items()}
    for keyword, text in rule.fields.items():
        try:
            unknown = sorted(set(placeholders(text)) - scene.variables.keys())
        except ValueError as exc:  # a lone { or }, a {name!x}: not a template text
            problems.append(f"fields.{keyword}: {exc}; write {{{{ and }}}} for literal braces")
            continue
        if unknown:
            problems.append(f"fields.{keyword}: unknown variable {', '.join(unknown)}")
        elif keyword in keywords and channel in WECHAT:
            rejected = problem(keyword, render_text(text, samples), channel)
            if rejected:
                problems.append(
                    f"fields.{keyword}: WeChat would reject it even with the shortest values ({rejected})"
                )
    return problems


def _twice(values: list[str]) -> list[str]:
    return sorted({value for value in values if values.count(value) > 1})


def _signature_problems(shop: ShopRules) -> list[str]:
    if shop.sms is None:
        return []
    problems = []
    names = [signature.name for signature in shop.sms.signatures]
    if len(names) > MAX_SIGNATURES:
        problems.append(f"sms.signatures: at most {MAX_SIGNATURES} signatures per shop, not {len(names)}")
    problems += [f"sms.signatures: {name} is there twice" for name in _twice(names)]
    active = shop.sms.active
    if active is not None and shop.sms.active_signature() is None:
        problems.append(f"sms.active: {active} is not an approved signature of the shop")
    return problems


def _sms_template_problems(shop: ShopRules, catalog: Catalog) -> list[str]:
    problems = _signature_problems(shop)
    enabled: dict[str, list[str]] = {}
    for template in shop.sms_templates:
        if template.enabled:
            enabled.setdefault(template.scene, []).append(template.name)
    problems += [
        f"sms_templates: scene {scene} has {len(names)} enabled templates ({', '.join(names)}), "
        "disable all but one"
        for scene, names in enabled.items()
        if len(names) > 1
    ]
    codes = [template.template_code for template in shop.sms_templates]
    problems += [f"sms_templates: {code} is there twice" for code in _twice(codes)]
    for index, template in enumerate(shop.sms_templates):
        scene = catalog.scenes.get(template.scene)
        where = f"sms_templates.{index}"
        if scene is None or ChannelName.ALIYUN_SMS not in scene.channels:
            problems.append(f"{where}.scene: {template.scene} is not a scene sent by SMS")
            continue
        unknown = sorted(set(template.parameters()) - scene.variables.keys())
        if unknown:
            problems.append(f"{where}.content: unknown variable {', '.join(unknown)}")
    return problems


def parse_shop_rules(document: object, catalog: Catalog, where: str) -> ShopRules:
    """A shop's rules from a document, checked against the catalog; ConfigError names every problem."""
    try:
        shop = ShopRules.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(where, validation_problems(exc)) from None
    broken = shop_problems(shop, catalog)
    if broken:
        raise ConfigError(where, broken)
    return shop


def load_shop_files(paths: list[Path], catalog: Catalog) -> list[ShopRules]:
    """Shops' rules from YAML files, every one validated (ConfigError names file and field)."""
    return [parse_shop_rules(load_yaml(path), catalog, str(path)) for path in paths]


def load_shop_rules(directory: Path, catalog: Catalog) -> dict[int, ShopRules]:
    """Every ``*.yaml`` in ``directory``, checked against the catalog, by shop id."""
    return {shop.shop_id: shop for shop in load_shop_files(sorted(directory.glob("*.yaml")), catalog)}
