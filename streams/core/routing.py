"""Routing: which scenes and channels an event triggers for its shop, as rendered dispatches. Pure.

:meth:`Router.route` returns the dispatches to send and, for every scene x channel that will not
send, the reason, so that every event ends either in deliveries or in a skip a person can read.
The shop's settings come compiled (:mod:`streams.core.render_plan`); per event this only reads
values from the event, formats them and joins strings.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from channels.base import ChannelName, Delivery
from streams.core.catalog import Catalog, ValueFormat, when_text
from streams.core.dispatch import Dispatch
from streams.core.errors import MissingVariable
from streams.core.events import Event
from streams.core.recipients import Recipient, is_sealed, person_key, recipient, seal, unseal
from streams.core.render_plan import ChannelPlan, Path, ScenePlan, ShopPlan, Skip
from streams.core.rendering import fill, format_value
from streams.core.sms_quota import segments
from streams.core.source import SourceRecord

DELIVERY_NAMESPACE = uuid.UUID("6f1c2a4e-93d5-4b8e-a1f0-5d7c3e9b2a10")
_NAMESPACE_BYTES = DELIVERY_NAMESPACE.bytes
BY_PERSON = frozenset({ChannelName.WECHAT_MP})
"""channels whose deliveries are keyed by their recipient (their sender keeps state per person)"""


@dataclass(frozen=True, slots=True)
class BuyerScene:
    """A scene of the event that notifies a buyer who may refuse it (not a code)."""

    user_id: str
    category: str
    valid_until: float | None
    """when it stops being worth sending (epoch seconds), when the event says it"""
    fallback: tuple[ChannelName, ...] | None
    """first_reachable: its channels in the order they are tried (None: all at once)"""


@dataclass(frozen=True)
class Routing:
    dispatches: list[Dispatch] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    buyers: dict[str, BuyerScene] = field(default_factory=dict)
    """scene -> its buyer, for the scenes a buyer may refuse (not the codes): their dispatches go
    through the buyers lane"""


def delivery_id(event_id: str, scene_id: str, channel: ChannelName, recipient: str) -> str:
    """Stable per event, scene, channel and recipient, so a redelivered event yields the same id:
    ``uuid5(DELIVERY_NAMESPACE, "event|scene|channel|recipient").hex``, without building UUIDs."""
    name = f"{event_id}|{scene_id}|{channel.value}|{recipient}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def send_key(dispatch: Dispatch, order_key: bytes, code: bool) -> bytes:
    """The key a dispatch goes to its send topic with: the event's (its order number), so one
    order's messages stay in order; its recipient's for a verification code (every code of a phone
    on one partition of the codes topic, with that phone's limits) and on the channels whose
    sender keeps state per person (the Mini Program's subscriptions), as :meth:`Router.address_key`
    keys the person's other records."""
    if not code and dispatch.delivery.channel not in BY_PERSON:
        return order_key
    if dispatch.recipient is not None:
        return dispatch.recipient.hash.encode()
    return person_key(None, dispatch.delivery.channel, dispatch.delivery.recipient)


def value_at(node: object, path: Path) -> object | None:
    """Follow attribute names down from the event; None when a step is absent."""
    for name in path:
        node = getattr(node, name, None)
        if node is None:
            return None
    return node


class Router:
    """Routes events with the catalog's triggers and the shops' compiled plans."""

    def __init__(self, catalog: Catalog, recipient_key: bytes | None = None) -> None:
        self._recipient_key = recipient_key
        """the platform's key for the recipients' keyed hashes (none: outcomes name no recipient)"""
        self._triggers = frozenset(scene.trigger for scene in catalog.scenes.values())
        self.code_scenes = frozenset(
            scene_id for scene_id, scene in catalog.scenes.items() if scene.kind == "verification_code"
        )
        """the scenes whose deliveries are verification codes (their own send topic and lane)"""

    def route(self, event: Event, plan: ShopPlan | None, source: SourceRecord, now: datetime) -> Routing:
        if event.type not in self._triggers:
            return Routing(skips=[Skip(f"no scene is triggered by {event.type}")])
        if plan is None:
            return Routing(skips=[Skip(f"shop {event.shop_id} has no notification settings")])
        candidates = plan.by_trigger.get(event.type, ())
        scenes = [scene for scene in candidates if _fires(event, scene)]
        if not scenes:
            unmet = [_condition(scene) for scene in candidates if scene.when]
            return Routing(skips=[Skip("; ".join(unmet) or f"no scene is triggered by {event.type}")])
        planned: list[tuple[ScenePlan, ChannelPlan, str, dict[str, str], str | None]] = []
        skips: list[Skip] = []
        formatted: dict[tuple[Path, ValueFormat], str | None] = {}  # scenes of an event share values
        for scene in scenes:
            party = value_at(event, scene.recipient)
            values = _values(event, scene, formatted)
            for step in scene.steps:
                if isinstance(step, Skip):
                    skips.append(step)
                    continue
                rendered = _render(scene, step, party, values)
                if isinstance(rendered, Skip):
                    skips.append(rendered)
                else:
                    address, fields, link = rendered
                    planned.append((scene, step, self._opened(address), fields, link))
        fanout = len(planned)
        dispatches = [
            Dispatch(
                delivery=Delivery(
                    delivery_id=delivery_id(event.id, scene.scene_id, step.channel, recipient),
                    channel=step.channel,
                    account=step.account,
                    recipient=self._address(recipient),
                    template_id=step.template_id,
                    fields=fields,
                    link=link,
                ),
                event_id=event.id,
                event_type=event.type,
                shop_id=event.shop_id,
                scene=scene.scene_id,
                source=source,
                fanout=fanout,
                created_at=now,
                event_time=event.time,
                sms_segments=segments(fill(step.billed, fields)) if step.billed is not None else 0,
                recipient=self._recipient(step.channel, recipient),
            )
            for scene, step, recipient, fields, link in planned
        ]
        return Routing(dispatches, skips, _refusing_buyers(event, scenes))

    def address_key(self, channel: ChannelName, address: str) -> bytes:
        """The Kafka key of a person's records on a channel (see :func:`person_key`)."""
        return person_key(self._recipient_key, channel, address)

    def _opened(self, address: str) -> str:
        """An address the platform keeps sealed (a seller's openid in the shop's settings), opened:
        it is sealed again on the send topic, hashed for the outcomes like any other."""
        if is_sealed(address) and self._recipient_key is not None:
            return unseal(self._recipient_key, address)
        return address

    def _address(self, address: str) -> str:
        """The address as the send topics carry it: sealed when the platform has a recipient key."""
        return seal(self._recipient_key, address) if self._recipient_key else address

    def _recipient(self, channel: ChannelName, address: str) -> Recipient | None:
        return recipient(self._recipient_key, channel, address) if self._recipient_key else None


def _refusing_buyers(event: Event, scenes: list[ScenePlan]) -> dict[str, BuyerScene]:
    """Per scene whose buyer may refuse it (a buyer's notice, not a code): the buyer, the scene's
    category, until when the event says it is worth sending, and how its channels are used."""
    buyers = {}
    for scene in scenes:
        user_id = getattr(value_at(event, scene.recipient), "user_id", None)
        if scene.audience == "buyer" and scene.category != "security" and isinstance(user_id, str):
            until = value_at(event, scene.valid_until) if scene.valid_until else None
            valid_until = until.timestamp() if isinstance(until, datetime) else None
            buyers[scene.scene_id] = BuyerScene(user_id, scene.category, valid_until, scene.fallback)
    return buyers


def _condition(scene: ScenePlan) -> str:
    """Why a scene did not fire: ``buyer_order_refunded: only when data.manual is true``."""
    wanted = ", ".join(f"{'.'.join(path)} is {value}" for path, value in scene.when)
    return f"{scene.scene_id}: only when {wanted}"


def _fires(event: Event, scene: ScenePlan) -> bool:
    return all(when_text(value_at(event, path)) == value for path, value in scene.when)


def _values(
    event: Event, scene: ScenePlan, formatted: dict[tuple[Path, ValueFormat], str | None]
) -> dict[str, str]:
    """The scene's variables the shop's templates use, formatted (defaults where the event has
    none); ``formatted`` keeps what the event's other scenes already formatted."""
    values = {}
    for name, variable in scene.variables.items():
        key = (variable.path, variable.format)
        if key not in formatted:
            raw = value_at(event, variable.path)
            formatted[key] = format_value(raw, variable.format) if raw is not None and raw != "" else None
        value = formatted[key]
        if value is not None:
            values[name] = value
        elif variable.default is not None:
            values[name] = variable.default
    return values


def _render(
    scene: ScenePlan, step: ChannelPlan, party: object, values: dict[str, str]
) -> tuple[str, dict[str, str], str | None] | Skip:
    """Recipient, keyword values and link of one channel, or why it cannot send."""
    recipient = getattr(party, step.address, None)
    if not recipient:
        return Skip(f"the {scene.audience} has no {step.channel.value} address", scene.scene_id, step.channel)
    try:
        fields = {keyword.keyword: keyword.fit(fill(keyword.text, values)) for keyword in step.keywords}
        link = fill(step.link, values) if step.link is not None else None
    except MissingVariable as exc:
        return Skip(str(exc), scene.scene_id, step.channel)
    return str(recipient), fields, link
