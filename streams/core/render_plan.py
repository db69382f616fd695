"""Render plans: a shop's settings compiled, once per settings change, into what routing needs per
event type. For each scene an event fires, in the catalog's channel order, either a
:class:`ChannelPlan` (template id, account, each keyword's text split into literals and slots,
the keyword's WeChat fitting rule) or the :class:`Skip` saying why that channel will not send.
Routing an event then only reads values and joins strings. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from channels.base import ChannelName
from channels.wechat_values import fitter
from streams.core.catalog import Catalog, Scene, ValueFormat
from streams.core.quiet_hours import Window
from streams.core.rendering import Text, compile_text
from streams.core.shops import FALLBACK_ORDER, ChannelRule, Fallback, QuietHours, ShopRules
from streams.core.sms_quota import billed_text

ADDRESS_FIELD = {
    ChannelName.WECHAT_OA: "oa_openid",
    ChannelName.WECHAT_MP: "mp_openid",
    ChannelName.ALIYUN_SMS: "phone",
}
NO_ACTIVE_SIGNATURE = "no_active_signature"
"""SMS: the shop has no approved signature chosen as active"""
Path = tuple[str, ...]
"""A dotted path of the catalog (``data.buyer``), split: attribute names from the event down."""


@dataclass(frozen=True, slots=True)
class Skip:
    """A scene x channel that will not send for this event, and why."""

    reason: str
    scene: str | None = None
    channel: ChannelName | None = None

    def __str__(self) -> str:
        where = "/".join(part for part in (self.scene, self.channel) if part)
        return f"{where}: {self.reason}" if where else self.reason


@dataclass(frozen=True, slots=True)
class KeywordPlan:
    keyword: str
    text: Text
    fit: Callable[[str], str]
    """makes a rendered value one the keyword's WeChat type accepts"""


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    channel: ChannelName
    account: str
    template_id: str
    address: str
    """the attribute of the recipient party that holds its address on this channel"""
    keywords: tuple[KeywordPlan, ...]
    link: Text | None
    billed: Text | None = None
    """SMS: the text Aliyun bills (【signature】 and the template's content), to count its segments"""


@dataclass(frozen=True, slots=True)
class VariablePlan:
    path: Path
    format: ValueFormat
    default: str | None


@dataclass(frozen=True, slots=True)
class ScenePlan:
    scene_id: str
    audience: str
    category: str
    when: tuple[tuple[Path, str], ...]
    recipient: Path
    variables: Mapping[str, VariablePlan]
    """only the variables this shop's templates of the scene use"""
    steps: tuple[ChannelPlan | Skip, ...]
    valid_until: Path | None = None
    """where the event says when the notice stops being worth sending"""
    fallback: tuple[ChannelName, ...] | None = None
    """first_reachable: the channels in the order they are tried (None: all at once)"""


@dataclass(frozen=True)
class ShopPlan:
    shop_id: int
    by_trigger: Mapping[str, tuple[ScenePlan, ...]] = field(default_factory=dict)
    daily_caps: Mapping[str, int] = field(default_factory=dict)
    """per category: notices a buyer gets from the shop a day, at most"""
    quiet: Mapping[str, Window] = field(default_factory=dict)
    """per category the shop holds in its quiet hours: the window"""


def split_path(dotted: str) -> Path:
    return tuple(dotted.split("."))


def compile_shop(shop: ShopRules, catalog: Catalog) -> ShopPlan:
    """Every scene of the catalog as this shop has set it up."""
    by_trigger: dict[str, list[ScenePlan]] = {}
    for scene_id, scene in catalog.scenes.items():
        by_trigger.setdefault(scene.trigger, []).append(_scene_plan(shop, scene_id, scene))
    return ShopPlan(
        shop.shop_id,
        {trigger: tuple(plans) for trigger, plans in by_trigger.items()},
        {str(category): cap for category, cap in shop.daily_caps.items()},
        _quiet(shop.quiet_hours),
    )


def _quiet(quiet: QuietHours | None) -> dict[str, Window]:
    if quiet is None:
        return {}
    window = quiet.window()
    return {str(category): window for category in quiet.categories}


def _scene_plan(shop: ShopRules, scene_id: str, scene: Scene) -> ScenePlan:
    steps = tuple(_step(shop, scene_id, scene, channel) for channel in scene.channels)
    used = {
        name
        for step in steps
        if isinstance(step, ChannelPlan)
        for text in (*(keyword.text for keyword in step.keywords), *((step.link,) if step.link else ()))
        for name in text.slots
    }
    variables = {
        name: VariablePlan(split_path(variable.source), variable.format, variable.default)
        for name, variable in scene.variables.items()
        if name in used
    }
    return ScenePlan(
        scene_id=scene_id,
        audience=scene.audience,
        category=scene.category,
        when=tuple((split_path(path), value) for path, value in scene.when.items()),
        recipient=split_path(scene.recipient),
        variables=variables,
        steps=steps,
        valid_until=split_path(scene.valid_until) if scene.valid_until else None,
        fallback=_fallback(shop.fallback.get(scene_id), scene),
    )


def _fallback(fallback: Fallback | None, scene: Scene) -> tuple[ChannelName, ...] | None:
    if fallback is None or fallback.policy == "all":
        return None
    return tuple(channel for channel in fallback.order or FALLBACK_ORDER if channel in scene.channels)


def _step(shop: ShopRules, scene_id: str, scene: Scene, channel: ChannelName) -> ChannelPlan | Skip:
    rule = shop.rule(scene_id, channel)
    if rule is None or not rule.enabled:
        reason = f" ({rule.disabled_reason})" if rule and rule.disabled_reason else ""
        return Skip(f"disabled by the shop{reason}", scene_id, channel)
    template = _template(shop, scene_id, scene, channel, rule)
    if isinstance(template, Skip):
        return template
    template_id, texts = template
    account = shop.account(channel)
    if account is None:
        sms = channel is ChannelName.ALIYUN_SMS
        return Skip(NO_ACTIVE_SIGNATURE if sms else f"the shop has no {channel} account", scene_id, channel)
    default = scene.default_templates.get(channel)
    return ChannelPlan(
        channel=channel,
        account=account,
        template_id=template_id,
        address=ADDRESS_FIELD[channel],
        keywords=tuple(
            KeywordPlan(keyword, compile_text(text), fitter(keyword, channel))
            for keyword, text in texts.items()
        ),
        link=compile_text(default.link) if default is not None and default.link else None,
        billed=_billed(shop, scene_id, account) if channel is ChannelName.ALIYUN_SMS else None,
    )


def _billed(shop: ShopRules, scene_id: str, signature: str) -> Text | None:
    template = shop.sms_template(scene_id)
    if template is None:
        return None
    bracketed = billed_text(signature, "").replace("{", "{{").replace("}", "}}")
    return compile_text(bracketed + template.as_text())


def _template(
    shop: ShopRules, scene_id: str, scene: Scene, channel: ChannelName, rule: ChannelRule
) -> tuple[str, Mapping[str, str]] | Skip:
    """The template id and the field texts: the shop's SMS template, its custom contents, or the
    system default."""
    if channel is ChannelName.ALIYUN_SMS:
        sms = shop.sms_template(scene_id)
        if sms is None:
            return Skip("no enabled SMS template", scene_id, channel)
        if sms.status != "approved":
            return Skip(f"SMS template {sms.template_code} is {sms.status} on Aliyun", scene_id, channel)
        return sms.template_code, {name: f"{{{name}}}" for name in sms.parameters()}
    default = scene.default_templates.get(channel)
    if default is None or not rule.template_id:
        return Skip("no template for this channel", scene_id, channel)
    return rule.template_id, rule.fields if rule.template == "custom" else default.fields
