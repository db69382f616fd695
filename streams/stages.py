"""The two stages of the pipeline, as plain async classes: the faust agents only feed them records.

:class:`RouterStage` turns an event record into deliveries on the channel send topics (or a
skip or dead letter); :class:`SenderStage` turns a delivery record into a provider call and a
final outcome (or a dead letter). Neither lets an error out for a bad record: each bad record
becomes a dead-letter record plus an outcome, so the offset can move on without losing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError

from channels.base import Channel, ChannelName, Delivery, ErrorClass, SendResult, SourceRecord
from streams import metrics
from streams.catalog import Catalog, ShopRules
from streams.events import EventRejected, parse_event
from streams.logs import fields, get_logger
from streams.outcomes import DeadLetter, Headers, Outcome, Stage, Status, delivery_outcome
from streams.routing import route
from streams.topics import Topics

Clock = Callable[[], datetime]
log = get_logger("stages")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Publisher(Protocol):
    """Writes a record to Kafka and returns once the broker has acknowledged it."""

    async def publish(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None: ...


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def source(self) -> SourceRecord:
        return SourceRecord(topic=self.topic, partition=self.partition, offset=self.offset)


class _Stage:
    def __init__(self, topics: Topics, publisher: Publisher, clock: Clock) -> None:
        self.topics = topics
        self.publisher = publisher
        self.clock = clock

    async def write_outcome(self, outcome: Outcome) -> None:
        await self.publisher.publish(self.topics.outcomes, outcome.key(), outcome.to_json())
        metrics.OUTCOMES.labels(outcome.status.value).inc()

    async def dead_letter(self, record: ConsumedRecord, letter: DeadLetter, outcome: Outcome) -> None:
        """The original bytes go to the DLQ untouched, the reason in headers; then the outcome."""
        await self.publisher.publish(
            self.topics.dead_letter, record.key, record.value or b"", letter.headers()
        )
        metrics.DEAD_LETTERED.labels(letter.stage.value, letter.reason).inc()
        log.warning(
            "dead-lettered",
            extra=fields(
                stage=letter.stage.value,
                reason=letter.reason,
                detail=letter.detail,
                event_id=letter.event_id,
                delivery_id=letter.delivery_id,
                source=str(record.source),
            ),
        )
        await self.write_outcome(outcome)


class RouterStage(_Stage):
    def __init__(
        self,
        topics: Topics,
        catalog: Catalog,
        shops: Mapping[int, ShopRules],
        publisher: Publisher,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(topics, publisher, clock)
        self.catalog = catalog
        self.shops = shops

    async def handle(self, record: ConsumedRecord) -> None:
        metrics.EVENTS_CONSUMED.labels(record.topic).inc()
        try:
            event = parse_event(record.value)
        except EventRejected as exc:
            letter = DeadLetter(
                stage=Stage.PARSE,
                reason=exc.reason.value,
                detail=exc.detail,
                source=record.source,
                failed_at=self.clock(),
            )
            await self.dead_letter(record, letter, letter.outcome())
            return
        try:
            routing = route(event, record.source, self.shops.get(event.shop_id), self.catalog, self.clock())
        except Exception as exc:  # a routing bug must dead-letter the event, not lose it
            log.exception("routing failed", extra=fields(event_id=event.id, source=str(record.source)))
            letter = DeadLetter(
                stage=Stage.ROUTE,
                reason="internal_error",
                detail=repr(exc),
                source=record.source,
                failed_at=self.clock(),
                event_id=event.id,
            )
            await self.dead_letter(record, letter, letter.outcome(shop_id=event.shop_id))
            return
        for delivery in routing.deliveries:
            await self.publisher.publish(
                self.topics.send_topic(delivery.channel), record.key, delivery.model_dump_json().encode()
            )
        reasons = "; ".join(str(skip) for skip in routing.skips) or None
        log.info(
            "routed",
            extra=fields(
                event_id=event.id,
                shop_id=event.shop_id,
                event_type=event.type,
                deliveries=len(routing.deliveries),
                skipped=reasons,
                source=str(record.source),
            ),
        )
        if not routing.deliveries:
            await self.write_outcome(
                Outcome(
                    status=Status.SKIPPED,
                    event_id=event.id,
                    shop_id=event.shop_id,
                    reason=reasons,
                    source=record.source,
                    at=self.clock(),
                )
            )


class SenderStage(_Stage):
    def __init__(
        self,
        topics: Topics,
        channels: Mapping[ChannelName, Channel],
        publisher: Publisher,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(topics, publisher, clock)
        self.channels = channels

    async def handle(self, record: ConsumedRecord) -> None:
        try:
            delivery = Delivery.model_validate_json(record.value or b"")
        except ValidationError as exc:
            letter = DeadLetter(
                stage=Stage.SEND,
                reason="invalid_delivery",
                detail=str(exc)[:500],
                source=record.source,
                failed_at=self.clock(),
            )
            await self.dead_letter(record, letter, letter.outcome())
            return
        result = await self._send(delivery)
        metrics.DELIVERIES.labels(
            delivery.channel.value, "delivered" if result.ok else str(result.error_class)
        ).inc()
        outcome = delivery_outcome(delivery, result, self.clock())
        log.info(
            "sent" if result.ok else "send failed",
            extra=fields(
                event_id=delivery.event_id,
                delivery_id=delivery.delivery_id,
                shop_id=delivery.shop_id,
                scene=delivery.scene,
                channel=delivery.channel.value,
                recipient=delivery.recipient,
                code=result.code,
                reason=result.reason,
                source=str(record.source),
            ),
        )
        if result.ok:
            await self.write_outcome(outcome)
            return
        letter = DeadLetter(
            stage=Stage.SEND,
            reason=str(result.error_class),
            detail=result.reason or "",
            source=record.source,
            failed_at=self.clock(),
            event_id=delivery.event_id,
            delivery_id=delivery.delivery_id,
            error_class=result.error_class,
            provider_code=result.code,
        )
        await self.dead_letter(record, letter, outcome)

    async def _send(self, delivery: Delivery) -> SendResult:
        channel = self.channels.get(delivery.channel)
        if channel is None:
            return SendResult.failed(
                ErrorClass.PERMANENT, "no_channel", f"{delivery.channel} is not configured"
            )
        started = time.perf_counter()
        try:
            return await channel.send(delivery)
        except Exception as exc:  # a channel bug: classify it, never let it out
            log.exception("channel raised", extra=fields(delivery_id=delivery.delivery_id))
            return SendResult.failed(ErrorClass.TRANSIENT, "internal_error", repr(exc))
        finally:
            metrics.SEND_SECONDS.labels(delivery.channel.value).observe(time.perf_counter() - started)
