"""Merchants' webhooks: the endpoints a shop registers, which outcomes each wants, the calls an
outcome makes, and when an endpoint that keeps failing is switched off. Pure.

An endpoint is a record of the compacted topic ``notify.webhooks`` (key ``<shop id>/<endpoint
id>``): the admin API writes it when the shop registers, changes, enables or removes it (a
tombstone); the webhook sender rewrites it when its calls start or stop failing, and switches it
off when they have failed for ``MALL_NOTIFY_WEBHOOK_DISABLE_AFTER_SECONDS`` (a day). Its secret
is never stored: it is derived from the platform's recipient key and the endpoint's id
(:func:`channels.webhook.secret_for`), shown to the shop once, when it registers the endpoint.

The webhook lane reads the outcomes and makes one call per outcome and endpoint that wants it
(:func:`calls`), keyed by endpoint: every call of an endpoint is on one partition of the webhook
send topic, in order, where its sender keeps the endpoint's health.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.base import ChannelName, Delivery
from channels.webhook import BODY
from streams.core.dispatch import Dispatch
from streams.core.events import envelope
from streams.core.outcomes import Outcome, Status
from streams.core.source import SourceRecord

WebhookEvent = Literal["delivered", "failed", "skipped", "reached", "not_reached"]
EVENT_OF: dict[Status, WebhookEvent] = {
    Status.DELIVERED: "delivered",
    Status.DEAD_LETTERED: "failed",
    Status.SKIPPED: "skipped",
    Status.REACHED: "reached",
    Status.NOT_REACHED: "not_reached",
}
ENDPOINTS_MOST = 10
"""endpoints a shop may register"""
DISABLED_EVENT_TYPE = "webhook.disabled"


class EndpointRequest(BaseModel):
    """What a shop asks for: where, and which outcomes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="https://... (a public host)")
    events: list[WebhookEvent] = Field(
        min_length=1, max_length=5, description="delivered, failed, skipped, reached, not_reached"
    )


class Endpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^wh_[0-9a-f]{16}$")
    shop_id: int = Field(gt=0)
    url: str
    events: list[WebhookEvent]
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = None
    """when its calls started to end dead-lettered (None: the last one went through)"""
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def wants(self, outcome: Outcome) -> bool:
        """An outcome of an event it subscribed to, reached since it was registered (a webhook
        lane catching up does not tell a new endpoint about messages older than itself)."""
        event = EVENT_OF.get(outcome.status)
        return self.enabled and event is not None and event in self.events and outcome.at >= self.created_at


class NewEndpoint(Endpoint):
    """An endpoint as the shop that registers it sees it, this once."""

    secret: str = Field(description="the signing secret: shown once, keep it where the receiver checks")


class EndpointList(BaseModel):
    endpoints: list[Endpoint]


def new_endpoint(shop_id: int, request: EndpointRequest, now: datetime) -> Endpoint:
    return Endpoint(
        id=f"wh_{secrets.token_hex(8)}",
        shop_id=shop_id,
        url=request.url,
        events=sorted(set(request.events)),
        created_at=now,
        updated_at=now,
    )


def endpoint_key(shop_id: int, endpoint_id: str) -> bytes:
    return f"{shop_id}/{endpoint_id}".encode()


HEALTH = "#health"
"""the suffix of the key of an endpoint's health record (the webhook sender's)"""
HEALTH_FIELDS = ("failing_since", "disabled_at", "disabled_reason", "updated_at")


def endpoint_record(endpoint: Endpoint) -> tuple[bytes, bytes]:
    """The endpoint as the shop registered or switched it on (the admin API's record)."""
    return endpoint_key(endpoint.shop_id, endpoint.id), endpoint.model_dump_json(exclude_none=True).encode()


def health_record(endpoint: Endpoint) -> tuple[bytes, bytes]:
    """What the endpoint's calls did to it: failing since, switched off (the webhook sender's
    record, under a key of its own, so it never brings back an endpoint the shop removed)."""
    health = endpoint.model_dump(mode="json", include=set(HEALTH_FIELDS))
    return endpoint_key(endpoint.shop_id, endpoint.id + HEALTH), orjson.dumps(health)


def removal(shop_id: int, endpoint_id: str) -> list[tuple[bytes, None]]:
    """The tombstones that remove an endpoint: its record and its health."""
    return [(endpoint_key(shop_id, endpoint_id), None), (endpoint_key(shop_id, endpoint_id + HEALTH), None)]


class EndpointTable(Mapping[str, Endpoint]):
    """Every endpoint, by id, from the records of the webhooks topic: the shop's record of each,
    with the sender's record of its health when that is newer (an endpoint switched on again by
    the shop after it was switched off is on). A health record of an endpoint without a record
    (removed) is kept aside and never lists it."""

    def __init__(self) -> None:
        self._registered: dict[str, Endpoint] = {}
        self._health: dict[str, dict[str, Any]] = {}
        """per endpoint, the sender's word on its health (``updated_at`` read as a time)"""
        self._endpoints: dict[str, Endpoint] = {}
        self._by_shop: dict[int, dict[str, Endpoint]] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> int | str:
        """One record: the shop whose endpoint it changed, or why it was not taken."""
        shop, _, endpoint_id = (key or b"").decode(errors="replace").partition("/")
        endpoint_id, health, _ = endpoint_id.partition(HEALTH)
        if not shop.isdigit() or not endpoint_id:
            return f"a webhooks record whose key is not <shop>/<endpoint>: {key!r}"
        refused = self._health_of(endpoint_id, value) if health else self._registration(endpoint_id, value)
        if refused is not None:
            return refused
        self._merge(endpoint_id, int(shop))
        return int(shop)

    def _health_of(self, endpoint_id: str, value: bytes | None) -> str | None:
        if value is None:
            self._health.pop(endpoint_id, None)
            return None
        try:
            health = orjson.loads(value)
            updated_at = datetime.fromisoformat(health["updated_at"])
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            return "a webhooks health record that is not one"
        self._health[endpoint_id] = {name: health.get(name) for name in HEALTH_FIELDS} | {
            "updated_at": updated_at
        }
        return None

    def _registration(self, endpoint_id: str, value: bytes | None) -> str | None:
        if value is None:
            self._registered.pop(endpoint_id, None)
            return None
        try:
            endpoint = Endpoint.model_validate_json(value)
        except ValidationError as exc:
            return f"a webhooks record that is not an endpoint: {exc.error_count()} problems"
        current = self._registered.get(endpoint.id)
        if current is None or current.updated_at <= endpoint.updated_at:
            self._registered[endpoint.id] = endpoint
        return None

    def _merge(self, endpoint_id: str, shop_id: int) -> None:
        registered = self._registered.get(endpoint_id)
        if registered is None:
            self._endpoints.pop(endpoint_id, None)
            self._by_shop.get(shop_id, {}).pop(endpoint_id, None)
            return
        health = self._health.get(endpoint_id)
        merged = registered
        if health is not None and health["updated_at"] > registered.updated_at:
            merged = Endpoint.model_validate({**registered.model_dump(), **health})
        self._endpoints[endpoint_id] = merged
        self._by_shop.setdefault(registered.shop_id, {})[endpoint_id] = merged

    def of_shop(self, shop_id: int) -> list[Endpoint]:
        """The shop's endpoints, oldest first."""
        return sorted(self._by_shop.get(shop_id, {}).values(), key=lambda e: e.created_at)

    def has_shop(self, shop_id: int) -> bool:
        return bool(self._by_shop.get(shop_id))

    def __getitem__(self, endpoint_id: str) -> Endpoint:
        return self._endpoints[endpoint_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._endpoints)

    def __len__(self) -> int:
        return len(self._endpoints)


def body(outcome: Outcome, call_id: str) -> bytes:
    """What the endpoint is told of an outcome: never the address, only its masked form."""
    event = EVENT_OF[outcome.status]
    data = {
        "delivery_id": outcome.delivery_id,
        "event_id": outcome.event_id,
        "shop_id": outcome.shop_id,
        "scene": outcome.scene,
        "channel": outcome.channel.value if outcome.channel else None,
        "status": outcome.status.value,
        "reason": outcome.reason,
        "provider_code": outcome.provider_code,
        "to": outcome.recipient.masked if outcome.recipient else None,
        "attempts": outcome.attempts,
        "routed_at": outcome.routed_at,
        "at": outcome.at,
    }
    return orjson.dumps(
        {"id": call_id, "type": f"message.{event}", "created_at": outcome.at, "data": data},
        option=orjson.OPT_NAIVE_UTC,
    )


def calls(outcome: Outcome, endpoints: list[Endpoint], source: SourceRecord, now: datetime) -> list[Dispatch]:
    """The calls an outcome makes: one per endpoint of its shop that wants it (none for an
    outcome of a webhook call itself). A call's id is the same however often the outcome is read."""
    if outcome.channel is ChannelName.WEBHOOK or outcome.shop_id is None:
        return []
    wanting = [e for e in endpoints if e.wants(outcome)]
    made = []
    for endpoint in wanting:
        call_id = (
            "whc_" + hashlib.blake2b(endpoint.id.encode() + b"|" + outcome.key(), digest_size=12).hexdigest()
        )
        delivery = Delivery(
            delivery_id=call_id,
            channel=ChannelName.WEBHOOK,
            account=endpoint.id,
            recipient=endpoint.url,
            template_id=f"message.{EVENT_OF[outcome.status]}",
            fields={BODY: body(outcome, call_id).decode()},
        )
        made.append(
            Dispatch(
                delivery=delivery,
                event_id=outcome.event_id or outcome.key().decode(),
                event_type="webhook",
                shop_id=outcome.shop_id,
                scene=outcome.scene or "webhook",
                source=source,
                fanout=len(wanting),
                created_at=now,
            )
        )
    return made


def after_call(
    endpoint: Endpoint, ok: bool, failing_from: datetime, now: datetime, disable_after: timedelta
) -> Endpoint | None:
    """The endpoint as a call's final outcome leaves it (None: unchanged): a call that went
    through ends a failing spell; one dead-lettered starts it, or switches the endpoint off when
    it has lasted ``disable_after``."""
    if ok:
        if endpoint.failing_since is None:
            return None
        return endpoint.model_copy(update={"failing_since": None, "updated_at": now})
    if endpoint.failing_since is None:
        return endpoint.model_copy(update={"failing_since": failing_from, "updated_at": now})
    if endpoint.enabled and now - endpoint.failing_since >= disable_after:
        reason = f"failing for {_hours(now - endpoint.failing_since)}"
        return endpoint.model_copy(update={"disabled_at": now, "disabled_reason": reason, "updated_at": now})
    return None


def disabled_event(endpoint: Endpoint, seller_openid: str | None, now: datetime) -> tuple[str, bytes]:
    """The event telling the shop's seller an endpoint was switched off (its id names the switch,
    so a copy of it tells no one twice)."""
    at = endpoint.disabled_at or now
    event_id = f"webhook-disabled-{endpoint.id}-{int(at.timestamp())}"
    seller = {"user_id": f"shop-{endpoint.shop_id}-owner"} | (
        {"oa_openid": seller_openid} if seller_openid else {}
    )
    data = {
        "seller": seller,
        "endpoint_id": endpoint.id,
        "host": urlsplit(endpoint.url).hostname or endpoint.url[:200],
        "reason": endpoint.disabled_reason or "its calls kept failing",
        "disabled_at": at,
    }
    return event_id, envelope(
        event_id, DISABLED_EVENT_TYPE, "/mall-notify/webhooks", endpoint.shop_id, data, now
    )


def enabled_again(endpoint: Endpoint, now: datetime) -> Endpoint:
    return endpoint.model_copy(
        update={"disabled_at": None, "disabled_reason": None, "failing_since": None, "updated_at": now}
    )


def _hours(spell: timedelta) -> str:
    hours = spell.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours >= 1 else f"{spell.total_seconds():.0f} seconds"
