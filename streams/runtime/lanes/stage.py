"""What the router and sender stages share: a stage turns a consumed record into the records to
write (deliveries, outcomes, dead letters, retries, ledger entries); the lane writes them and only
then moves the record's offset on. Stages do no Kafka I/O themselves.

A dead letter keeps the original bytes when they fit in one Kafka record; otherwise it is a small
JSON reference to where the record is (topic, partition, offset) with its size and SHA-256, and
the reason ``too_large``, so no record can stall a partition by being too large to dead-letter.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from streams.core.failures import TOO_LARGE, Failure, Stage
from streams.core.outcomes import Outcome, Status, event_outcome
from streams.core.topics import Topics
from streams.logs import Repeats, fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.lanes.ledger import Ledger

Clock = Callable[[], datetime]
log = get_logger("stage")
DEAD_LETTERS = Repeats(log, interval_seconds=30.0)
"""one line per stage and reason each 30 s, the first with its details, then how many more (each
one at DEBUG; every one is in the dead-letter topic)"""
MAX_RECORD_BYTES = 1_000_000
"""The producer's limit (librdkafka's ``message.max.bytes``): larger records are refused at once."""
RECORD_OVERHEAD_BYTES = 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


def record_size(value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return (
        len(value or b"")
        + len(key or b"")
        + sum(len(name) + len(data) for name, data in headers)
        + RECORD_OVERHEAD_BYTES
    )


def reference(record: ConsumedRecord) -> bytes:
    """What a dead letter holds instead of a record too large to copy: where to find it."""
    value = record.value or b""
    return orjson.dumps(
        {
            "too_large": {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "bytes": len(value),
                "sha256": hashlib.sha256(value).hexdigest(),
            }
        }
    )


class PipelineStage:
    stage: Stage

    def __init__(self, topics: Topics, ledger: Ledger | None, clock: Clock) -> None:
        self.topics = topics
        self.ledger = ledger
        """the final outcomes of the consumed partitions (None: this stage's records have none)"""
        self.clock = clock

    def already_final(self, key: str, record: ConsumedRecord) -> bool:
        """True when ``key`` has its final outcome and this record must not change it: it was
        delivered, or this is a second reading (crash, duplicate) rather than a replay from the DLQ."""
        if self.ledger is None:
            return False
        status = self.ledger.final((record.topic, record.partition), key)
        if status is None:
            return False
        previous = record.history
        return status is Status.DELIVERED or not (previous and previous.replays)

    def final(self, record: ConsumedRecord, key: str, outcome: Outcome) -> list[Write]:
        """The outcome record, and the ledger entry of a final decision about ``key`` when the
        record's topic has a ledger (retry topics don't: their records are about send-topic ones)."""
        writes = [self.outcome(outcome)]
        if self.ledger is not None and self.ledger.covers(record.topic):
            source = (record.topic, record.partition)
            at = outcome.at.timestamp()
            origin = str(outcome.source) if outcome.delivery_id else None  # tells a duplicate event apart
            writes.append(self.ledger.entry(source, key, outcome.status, at, origin))
        return writes

    def outcome(self, outcome: Outcome) -> Write:
        """The outcome record alone, counted (a duplicate's: the ledger already has the key)."""
        metrics.OUTCOMES.labels(outcome.status.value, "true" if outcome.replayed else "false").inc()
        return Write(self.topics.outcomes, outcome.key(), outcome.to_json())

    def fitting(self, record: ConsumedRecord, failure: Failure) -> Failure:
        """The failure as the record's dead letter can say it: ``too_large`` (the original reason
        in the detail) when the record with its history does not fit in one Kafka record."""
        if record_size(record.value, record.key, failure.headers()) <= MAX_RECORD_BYTES:
            return failure
        size = len(record.value or b"")
        detail = f"the record ({size} bytes) is too large to copy; {failure.reason}: {failure.detail}"
        return failure.model_copy(update={"reason": TOO_LARGE, "detail": detail})

    def dead_letter(self, record: ConsumedRecord, failure: Failure) -> Write:
        """The original bytes to the DLQ, the history in headers; a reference for ``too_large``
        (see :meth:`fitting`)."""
        headers = failure.headers()
        value = reference(record) if failure.reason == TOO_LARGE else record.value
        metrics.DEAD_LETTERED.labels(failure.stage.value, failure.reason).inc()
        about = {
            "stage": failure.stage.value,
            "reason": failure.reason,
            "detail": failure.detail,
            "attempts": failure.attempts,
            "event_id": failure.event_id,
            "delivery_id": failure.delivery_id,
            "source": str(record.source),
        }
        DEAD_LETTERS.warning(f"dead-lettered ({failure.stage.value}, {failure.reason})", **about)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("dead-lettered", extra=fields(**about))
        return Write(self.topics.dead_letter, record.key, value, headers)

    def failure(
        self,
        record: ConsumedRecord,
        reason: str,
        detail: str,
        event_id: str | None = None,
        stage: Stage | None = None,
    ) -> Failure:
        """A failure of ``record`` at this stage. A record replayed from the DLQ keeps its history:
        where it was first read, when it first failed, how often and when it was replayed."""
        previous = record.history
        now = self.clock()
        failure = Failure(
            stage=stage or self.stage,
            reason=reason,
            detail=detail,
            origin=previous.origin if previous else record.source,
            first_failed_at=previous.first_failed_at if previous else now,
            last_failed_at=now,
            event_id=event_id,
            replays=previous.replays if previous else 0,
            replayed_at=previous.replayed_at if previous else None,
        )
        return self.fitting(record, failure)

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        """The record ends dead-lettered as a reference (``too_large``) when what it led to could
        not be written as it was: the broker refused a record size the producer allowed, say."""
        return self.dead_lettered(record, TOO_LARGE, detail)

    def dead_lettered(self, record: ConsumedRecord, reason: str, detail: str) -> list[Write]:
        """A record that is no event or delivery of its own (nothing to key it by but where it was
        read) dead-lettered, with its outcome."""
        failure = self.failure(record, reason, detail)
        outcome = event_outcome(Status.DEAD_LETTERED, failure, record.source, self.clock())
        return [self.dead_letter(record, failure), *self.final(record, str(record.source), outcome)]


class RetryStage(PipelineStage):
    """What the retry forwarder needs of a stage: the dead letter of a record it cannot write back."""

    stage = Stage.SEND
