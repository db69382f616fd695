"""The sender stage: a delivery record becomes a provider call and then a final outcome, a retry
record (in flight, waiting in a retry tier) or a dead letter. Never raises for a bad record."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from channels.base import Channel, ChannelName, Delivery, ErrorClass, SendResult
from streams.core.failures import Failure, Stage
from streams.core.outcomes import Status, delivery_outcome, event_outcome
from streams.core.retry import GiveUp, decide
from streams.core.topics import Topics
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.stages import Clock, ConsumedRecord, Ledger, PipelineStage, Publisher, utc_now

log = get_logger("sender")


class SenderStage(PipelineStage):
    def __init__(
        self,
        topics: Topics,
        channels: Mapping[ChannelName, Channel],
        publisher: Publisher,
        ledger: Ledger,
        clock: Clock = utc_now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(topics, publisher, ledger, clock)
        self.channels = channels
        self.rand = rand

    async def handle(self, record: ConsumedRecord) -> None:
        try:
            delivery = Delivery.model_validate_json(record.value or b"")
        except ValidationError as exc:
            failure = self.failure(record, Stage.SEND, "invalid_delivery", str(exc)[:500])
            await self.dead_letter(
                record, failure, event_outcome(Status.DEAD_LETTERED, failure, record.source, self.clock())
            )
            return
        previous = record.history
        if self.already_final(delivery.delivery_id, record):
            metrics.DUPLICATES_SUPPRESSED.labels(delivery.channel.value).inc()
            log.info(
                "already final, not sent again",
                extra=fields(
                    delivery_id=delivery.delivery_id,
                    event_id=delivery.event_id,
                    source=str(record.source),
                    status=self.ledger.final(delivery.delivery_id),
                ),
            )
            return
        result = await self._send(delivery)
        self._count(delivery, result)
        if result.ok:
            await self.write_outcome(
                delivery_outcome(
                    delivery,
                    result,
                    self.clock(),
                    attempts=(previous.attempts if previous else 0) + 1,
                    replayed=bool(previous and previous.replays),
                )
            )
            return
        await self._after_failure(record, delivery, result, previous)

    async def _after_failure(
        self, record: ConsumedRecord, delivery: Delivery, result: SendResult, previous: Failure | None
    ) -> None:
        now = self.clock()
        reason, detail = str(result.error_class), result.reason or ""
        failure = (
            previous.again(
                reason=reason,
                detail=detail,
                at=now,
                error_class=result.error_class,
                provider_code=result.code,
            )
            if previous
            else Failure(
                stage=Stage.SEND,
                reason=reason,
                detail=detail,
                origin=record.source,
                first_failed_at=now,
                last_failed_at=now,
                event_id=delivery.event_id,
                delivery_id=delivery.delivery_id,
                error_class=result.error_class,
                provider_code=result.code,
            )
        )
        retry = self.topics.spec.retry
        decision = decide(
            result,
            failure.attempts,
            retry.tiers,
            unknown_code_max_retries=retry.unknown_code_max_retries,
            jitter=retry.jitter,
            now=now,
            rand=self.rand(),
        )
        if isinstance(decision, GiveUp):
            failure = failure.model_copy(update={"reason": decision.reason})
            await self.dead_letter(
                record,
                failure,
                delivery_outcome(
                    delivery, result, now, attempts=failure.attempts, replayed=bool(failure.replays)
                ),
            )
            return
        scheduled = failure.model_copy(update={"due_at": decision.due_at})
        topic = self.topics.retry_topic(delivery.channel, decision.tier)
        await self.publisher.publish(topic, record.key, record.value or b"", scheduled.headers())
        metrics.RETRIES_SCHEDULED.labels(delivery.channel.value, decision.tier.name).inc()
        log.info(
            "retry scheduled",
            extra=fields(
                delivery_id=delivery.delivery_id,
                event_id=delivery.event_id,
                channel=delivery.channel.value,
                tier=decision.tier.name,
                attempts=failure.attempts,
                code=result.code,
                due_at=decision.due_at.isoformat(),
            ),
        )

    def _count(self, delivery: Delivery, result: SendResult) -> None:
        metrics.DELIVERIES.labels(
            delivery.channel.value, "delivered" if result.ok else str(result.error_class)
        ).inc()
        if result.unknown_code:
            metrics.UNKNOWN_PROVIDER_CODES.labels(delivery.channel.value, str(result.code)).inc()
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
            ),
        )

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
