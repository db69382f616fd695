"""Merchants' webhooks in the worker: the webhook lane turns outcomes into calls, and the webhook
sender keeps each endpoint's health.

The **webhook lane** (``webhooks`` in ``MALL_NOTIFY_LANES``, consumer group ``<app id>.webhooks``)
reads ``notify.outcomes`` and writes, for each outcome, one call per endpoint of its shop that
wants it to ``notify.send.webhook``, keyed by endpoint, in the transaction that moves its
offsets: each call is made once however often the lane crashes. The calls are then sent by the
webhook channel's sender like any delivery: retried through the retry tiers, dead-lettered after
the last one, replayable, their outcomes in ``notify.outcomes`` (channel ``webhook``; the lane
makes no call about a call).

The **endpoint health** runs in that sender: all calls of an endpoint are on one partition, so
one sender sees them in order. A call that ends dead-lettered starts a failing spell (written to
the endpoint's health record, apart from the shop's); one that goes through ends it; a spell that has lasted
``MALL_NOTIFY_WEBHOOK_DISABLE_AFTER_SECONDS`` switches the endpoint off and publishes
``webhook.disabled``, which the router sends to the shop's seller (scene
``seller_webhook_disabled``, when the shop has it on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import orjson
from pydantic import ValidationError

from channels.base import ChannelName
from streams.core.dispatch import Dispatch
from streams.core.failures import Stage
from streams.core.outcomes import Outcome
from streams.core.recipients import seal
from streams.core.shops import ShopRules
from streams.core.topics import Topics
from streams.core.webhooks import (
    DISABLED_EVENT_TYPE,
    Endpoint,
    EndpointTable,
    after_call,
    calls,
    disabled_event,
    health_record,
)
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import LaneConfig
from streams.runtime.lanes.stage import Clock, PipelineStage, utc_now
from streams.runtime.lanes.stateful_lane import LoadedFirstLane

log = get_logger("webhooks")


class WebhookStage(PipelineStage):
    stage = Stage.ROUTE

    def __init__(
        self, topics: Topics, endpoints: EndpointTable, key: bytes | None, clock: Clock = utc_now
    ) -> None:
        super().__init__(topics, None, clock)
        self.endpoints = endpoints
        self.key = key
        """the platform's recipient key: a call's URL is sealed on the send topic like an address"""

    def handle(self, record: ConsumedRecord) -> list[Write]:
        if not self.endpoints:
            return []  # no shop has an endpoint: nothing to read closely
        try:
            shop_id = orjson.loads(record.value or b"").get("shop_id")
            if not isinstance(shop_id, int) or not self.endpoints.has_shop(shop_id):
                return []
            outcome = Outcome.model_validate_json(record.value or b"")
        except (orjson.JSONDecodeError, AttributeError, ValidationError):
            return []  # not an outcome of ours: nothing to tell anyone
        made = calls(outcome, self.endpoints.of_shop(shop_id), record.source, self.clock())
        metrics.WEBHOOK_CALLS.inc(len(made))
        send = self.topics.send_topic(ChannelName.WEBHOOK)
        return [Write(send, d.delivery.account.encode(), self._sealed(d).to_json()) for d in made]

    def _sealed(self, dispatch: Dispatch) -> Dispatch:
        """The call with its URL sealed (it may hold the merchant's own token)."""
        if self.key is None:
            return dispatch
        delivery = replace(dispatch.delivery, recipient=seal(self.key, dispatch.delivery.recipient))
        return replace(dispatch, delivery=delivery)


class WebhookLane(LoadedFirstLane):
    """Reads no outcome before the endpoints are loaded (``ready``)."""

    stage: WebhookStage

    def __init__(
        self,
        config: LaneConfig,
        stage: WebhookStage,
        transactions: Transactions,
        *,
        batch: int,
        ready: asyncio.Event,
    ) -> None:
        super().__init__("webhooks", config, transactions, batch=batch, ready=ready)
        self.stage = stage

    async def handle(self, records: list[ConsumedRecord]) -> None:
        for record in records:
            self.finish(record, self.stage.handle(record))


class EndpointHealth:
    """What a webhook call's final outcome does to its endpoint (see the module's doc)."""

    def __init__(
        self,
        topics: Topics,
        endpoints: EndpointTable,
        shops: Callable[[int], ShopRules | None],
        disable_after: timedelta,
    ) -> None:
        self.topics = topics
        self.endpoints = endpoints
        self.shops = shops
        self.disable_after = disable_after
        self._written: dict[str, Endpoint] = {}
        """what this sender last wrote of each endpoint (the table may not have read it back yet)"""

    def after(self, dispatch: Dispatch, ok: bool, failing_from: datetime, now: datetime) -> list[Write]:
        endpoint = self._latest(dispatch.delivery.account)
        if endpoint is None:
            return []  # removed since the call was made
        changed = after_call(endpoint, ok, failing_from, now, self.disable_after)
        if changed is None:
            return []
        self._written[changed.id] = changed
        writes = [Write(self.topics.webhooks, *health_record(changed))]
        if endpoint.enabled and not changed.enabled:
            metrics.WEBHOOKS_DISABLED.inc()
            log.warning(
                "webhook endpoint switched off",
                extra=fields(shop_id=changed.shop_id, endpoint=changed.id, reason=changed.disabled_reason),
            )
            topic = self.topics.event_topic_for(DISABLED_EVENT_TYPE)
            shop = self.shops(changed.shop_id)
            if topic is not None:
                _, event = disabled_event(changed, shop.seller_openid if shop else None, now)
                writes.append(Write(topic, str(changed.shop_id).encode(), event))
        return writes

    def _latest(self, endpoint_id: str) -> Endpoint | None:
        known, written = self.endpoints.get(endpoint_id), self._written.get(endpoint_id)
        if known is None:
            self._written.pop(endpoint_id, None)
            return None
        return written if written is not None and written.updated_at > known.updated_at else known
