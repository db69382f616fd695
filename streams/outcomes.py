"""What finally happened to an event or a delivery, and the dead-letter record that goes with a failure.

Every consumed event ends in the outcomes topic: one ``delivered`` or ``dead_lettered`` record per
delivery, or one ``skipped`` / ``dead_lettered`` record for an event that produced no delivery.
Dead-letter records keep the original bytes and carry the history in headers. Pure, no Kafka.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict

from channels.base import ChannelName, Delivery, ErrorClass, SendResult, SourceRecord

Headers = list[tuple[str, bytes]]


class Status(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"


class Stage(StrEnum):
    """Where in the pipeline a failure happened."""

    PARSE = "parse"
    ROUTE = "route"
    SEND = "send"


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Status
    event_id: str | None = None
    delivery_id: str | None = None
    shop_id: int | None = None
    scene: str | None = None
    channel: ChannelName | None = None
    reason: str | None = None
    error_class: ErrorClass | None = None
    provider_code: str | None = None
    source: SourceRecord
    fanout: int = 1
    at: datetime

    def key(self) -> bytes:
        """Outcomes are keyed by delivery (or event, or source record) so a reader can compact them."""
        return (self.delivery_id or self.event_id or str(self.source)).encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def delivery_outcome(delivery: Delivery, result: SendResult, at: datetime) -> Outcome:
    return Outcome(
        status=Status.DELIVERED if result.ok else Status.DEAD_LETTERED,
        event_id=delivery.event_id,
        delivery_id=delivery.delivery_id,
        shop_id=delivery.shop_id,
        scene=delivery.scene,
        channel=delivery.channel,
        reason=result.reason,
        error_class=result.error_class,
        provider_code=result.code,
        source=delivery.source,
        fanout=delivery.fanout,
        at=at,
    )


class DeadLetter(BaseModel):
    """Why a record is dead-lettered; becomes the ``x-dlq-*`` headers of the DLQ record."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    reason: str
    detail: str
    source: SourceRecord
    failed_at: datetime
    event_id: str | None = None
    delivery_id: str | None = None
    error_class: ErrorClass | None = None
    provider_code: str | None = None

    def headers(self) -> Headers:
        values = {
            "x-dlq-stage": self.stage.value,
            "x-dlq-reason": self.reason,
            "x-dlq-detail": self.detail[:1000],
            "x-dlq-source-topic": self.source.topic,
            "x-dlq-source-partition": str(self.source.partition),
            "x-dlq-source-offset": str(self.source.offset),
            "x-dlq-failed-at": self.failed_at.isoformat(),
            "x-dlq-event-id": self.event_id,
            "x-dlq-delivery-id": self.delivery_id,
            "x-dlq-error-class": self.error_class.value if self.error_class else None,
            "x-dlq-provider-code": self.provider_code,
        }
        return [(name, value.encode()) for name, value in values.items() if value is not None]

    def outcome(self, shop_id: int | None = None, fanout: int = 1) -> Outcome:
        return Outcome(
            status=Status.DEAD_LETTERED,
            event_id=self.event_id,
            delivery_id=self.delivery_id,
            shop_id=shop_id,
            reason=f"{self.reason}: {self.detail}",
            error_class=self.error_class,
            provider_code=self.provider_code,
            source=self.source,
            fanout=fanout,
            at=self.failed_at,
        )


def header_map(headers: Headers | None) -> dict[str, str]:
    """Kafka headers as a dict of text, for reading DLQ records."""
    return {name: value.decode(errors="replace") for name, value in headers or []}
