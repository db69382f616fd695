"""Routing: which scenes and channels an event triggers for its shop, as rendered deliveries. Pure.

``route`` returns the deliveries to send and, for every scene x channel that will not send,
the reason, so that every event ends either in deliveries or in a skip a person can read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.base import ChannelName, Delivery, SourceRecord
from streams.core.catalog import Catalog, Scene, lookup
from streams.core.errors import MissingVariable
from streams.core.events import Envelope, Event
from streams.core.rendering import render_fields, render_link, variable_values
from streams.core.shops import ChannelRule, ShopRules

DELIVERY_NAMESPACE = uuid.UUID("6f1c2a4e-93d5-4b8e-a1f0-5d7c3e9b2a10")


@dataclass(frozen=True)
class Skip:
    """A scene x channel that will not send for this event, and why."""

    reason: str
    scene: str | None = None
    channel: ChannelName | None = None

    def __str__(self) -> str:
        where = "/".join(part for part in (self.scene, self.channel) if part)
        return f"{where}: {self.reason}" if where else self.reason


@dataclass(frozen=True)
class Routing:
    deliveries: list[Delivery] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


@dataclass(frozen=True)
class _Planned:
    scene_id: str
    channel: ChannelName
    account: str
    recipient: str
    template_id: str
    fields: dict[str, str]
    link: str | None


ADDRESS_FIELD = {
    ChannelName.WECHAT_OA: "oa_openid",
    ChannelName.WECHAT_MP: "mp_openid",
    ChannelName.ALIYUN_SMS: "phone",
}


def delivery_id(event_id: str, scene_id: str, channel: ChannelName, recipient: str) -> str:
    """Stable per event, scene, channel and recipient, so a redelivered event yields the same id."""
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}|{scene_id}|{channel.value}|{recipient}").hex


def route(
    event: Event, source: SourceRecord, shop: ShopRules | None, catalog: Catalog, now: datetime
) -> Routing:
    document = event.model_dump()
    scenes = catalog.scenes_for(event.type, document)
    if not scenes:
        return Routing(skips=[Skip(f"no scene is triggered by {event.type}")])
    if shop is None:
        return Routing(skips=[Skip(f"shop {event.shop_id} has no notification settings")])
    planned: list[_Planned] = []
    skips: list[Skip] = []
    for scene_id, scene in scenes:
        for channel in scene.channels:
            outcome = _plan(document, shop, scene_id, scene, channel)
            if isinstance(outcome, _Planned):
                planned.append(outcome)
            else:
                skips.append(outcome)
    deliveries = [_delivery(event, source, plan, len(planned), now) for plan in planned]
    return Routing(deliveries=deliveries, skips=skips)


def _plan(
    document: Mapping[str, Any], shop: ShopRules, scene_id: str, scene: Scene, channel: ChannelName
) -> _Planned | Skip:
    """One scene x channel: a planned delivery, or why not."""
    rule = shop.rule(scene_id, channel)
    if rule is None or not rule.enabled:
        reason = f" ({rule.disabled_reason})" if rule and rule.disabled_reason else ""
        return Skip(f"disabled by the shop{reason}", scene_id, channel)
    template = _template(shop, scene_id, scene, channel, rule)
    if isinstance(template, Skip):
        return template
    template_id, fields_spec = template
    account = shop.account(channel)
    if account is None:
        return Skip(f"the shop has no {channel.value} account", scene_id, channel)
    party = lookup(document, scene.recipient)
    recipient = party.get(ADDRESS_FIELD[channel]) if isinstance(party, Mapping) else None
    if not recipient:
        return Skip(f"the {scene.audience} has no {channel.value} address", scene_id, channel)
    values = variable_values(document, scene.variables)
    default = scene.default_templates.get(channel)
    try:
        fields = render_fields(fields_spec, values)
        link = render_link(default, values) if default else None
    except MissingVariable as exc:
        return Skip(str(exc), scene_id, channel)
    return _Planned(scene_id, channel, account, str(recipient), template_id, fields, link)


def _template(
    shop: ShopRules, scene_id: str, scene: Scene, channel: ChannelName, rule: ChannelRule
) -> tuple[str, Mapping[str, str]] | Skip:
    """The template id and the field texts to render: the shop's SMS template, its custom
    contents, or the system default."""
    if channel is ChannelName.ALIYUN_SMS:
        sms = shop.sms_template(scene_id)
        if sms is None:
            return Skip("no enabled SMS template", scene_id, channel)
        return sms.template_code, {name: f"{{{name}}}" for name in sms.parameters()}
    default = scene.default_templates.get(channel)
    if default is None or not rule.template_id:
        return Skip("no template for this channel", scene_id, channel)
    return rule.template_id, rule.fields if rule.template == "custom" else default.fields


def _delivery(event: Envelope, source: SourceRecord, plan: _Planned, fanout: int, now: datetime) -> Delivery:
    return Delivery(
        delivery_id=delivery_id(event.id, plan.scene_id, plan.channel, plan.recipient),
        event_id=event.id,
        event_type=getattr(event, "type", ""),
        shop_id=event.shop_id,
        scene=plan.scene_id,
        channel=plan.channel,
        account=plan.account,
        recipient=plan.recipient,
        template_id=plan.template_id,
        fields=plan.fields,
        link=plan.link,
        source=source,
        fanout=fanout,
        created_at=now,
    )
