"""The stages of the pipeline, as plain async classes: the faust agents only feed them records.

:class:`RouterStage` turns an event record into deliveries on the channel send topics (or a
skip or dead letter); the sender stage (``streams/sending.py``) sends them. Neither lets an
error out for a bad record: a bad record becomes a dead-letter record plus an outcome, so its
offset can move on.
Every write is acknowledged by Kafka before ``handle`` returns (the ledger's at the next commit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Protocol

from channels.base import SourceRecord
from streams.core.catalog import Catalog
from streams.core.errors import EventRejected
from streams.core.events import parse_event
from streams.core.failures import Failure, Headers, Stage
from streams.core.outcomes import Outcome, Status, event_outcome
from streams.core.routing import route
from streams.core.shops import ShopRules
from streams.core.topics import Topics
from streams.logs import fields, get_logger
from streams.runtime import metrics

Clock = Callable[[], datetime]
log = get_logger("stages")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Publisher(Protocol):
    """Writes a record to Kafka and returns once the broker has acknowledged it."""

    async def publish(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None: ...


class Ledger(Protocol):
    """Final outcomes, written once and read back: a delivered id is never sent again."""

    def final(self, key: str) -> Status | None: ...

    async def record(self, outcome: Outcome) -> None: ...


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

    @cached_property
    def history(self) -> Failure | None:
        """The failure history the record carries (a retry or a replay), read once."""
        return Failure.from_headers(self.headers)


class PipelineStage:
    """What both stages share: writing outcomes and dead letters, and reading the ledger."""

    def __init__(self, topics: Topics, publisher: Publisher, ledger: Ledger, clock: Clock) -> None:
        self.topics = topics
        self.publisher = publisher
        self.ledger = ledger
        self.clock = clock

    def already_final(self, key: str, record: ConsumedRecord) -> bool:
        """True when ``key`` has its final outcome and this record must not change it: it was
        delivered, or this is a second reading (crash, duplicate) rather than a replay from the DLQ."""
        status = self.ledger.final(key)
        if status is None:
            return False
        previous = record.history
        return status is Status.DELIVERED or not (previous and previous.replays)

    async def write_outcome(self, outcome: Outcome) -> None:
        await self.ledger.record(outcome)
        metrics.OUTCOMES.labels(outcome.status.value).inc()

    async def dead_letter(self, record: ConsumedRecord, failure: Failure, outcome: Outcome) -> None:
        """The original bytes go to the DLQ untouched, the history in headers; then the outcome."""
        await self.publisher.publish(
            self.topics.dead_letter, record.key, record.value or b"", failure.headers()
        )
        metrics.DEAD_LETTERED.labels(failure.stage.value, failure.reason).inc()
        log.warning(
            "dead-lettered",
            extra=fields(
                stage=failure.stage.value,
                reason=failure.reason,
                detail=failure.detail,
                attempts=failure.attempts,
                event_id=failure.event_id,
                delivery_id=failure.delivery_id,
                source=str(record.source),
            ),
        )
        await self.write_outcome(outcome)

    def failure(
        self, record: ConsumedRecord, stage: Stage, reason: str, detail: str, event_id: str | None = None
    ) -> Failure:
        """A first failure of ``record``, keeping the replay count of a record replayed from the DLQ."""
        previous = record.history
        now = self.clock()
        return Failure(
            stage=stage,
            reason=reason,
            detail=detail,
            origin=previous.origin if previous else record.source,
            first_failed_at=now,
            last_failed_at=now,
            event_id=event_id,
            replays=previous.replays if previous else 0,
        )


class RouterStage(PipelineStage):
    def __init__(
        self,
        topics: Topics,
        catalog: Catalog,
        shops: Mapping[int, ShopRules],
        publisher: Publisher,
        ledger: Ledger,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(topics, publisher, ledger, clock)
        self.catalog = catalog
        self.shops = shops

    async def handle(self, record: ConsumedRecord) -> None:
        metrics.EVENTS_CONSUMED.labels(record.topic).inc()
        try:
            event = parse_event(record.value)
        except EventRejected as exc:
            if self.already_final(str(record.source), record):
                return
            failure = self.failure(record, Stage.PARSE, exc.reason.value, exc.detail)
            await self.dead_letter(
                record, failure, event_outcome(Status.DEAD_LETTERED, failure, record.source, self.clock())
            )
            return
        if self.already_final(event.id, record):
            return  # read again after a crash: its skip or dead letter is written already
        try:
            routing = route(event, record.source, self.shops.get(event.shop_id), self.catalog, self.clock())
        except Exception as exc:  # a routing bug must dead-letter the event, not lose it
            log.exception("routing failed", extra=fields(event_id=event.id, source=str(record.source)))
            failure = self.failure(record, Stage.ROUTE, "internal_error", repr(exc), event.id)
            outcome = event_outcome(
                Status.DEAD_LETTERED, failure, record.source, self.clock(), shop_id=event.shop_id
            )
            await self.dead_letter(record, failure, outcome)
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
                event_outcome(
                    Status.SKIPPED,
                    reasons or "nothing to send",
                    record.source,
                    self.clock(),
                    event_id=event.id,
                    shop_id=event.shop_id,
                )
            )
