"""Delays without blocking: records wait in delay topics until due, then go back where they came
from. Two lanes are forwarders: ``retry`` (failed deliveries, from the retry topics back to their
channel's send topic) and ``deferred`` (buyers' notices held by quiet hours, from the delay buckets
back to the buyers' topic, at a bounded rate).

Kafka has no delayed delivery. As Spring Kafka's retryable topics do, the forwarder reads the
delay topics in its own consumer group, and when the head record of a partition is not due yet
it seeks back to it and *pauses that partition* until the due time (other partitions and the send
topics keep flowing). A retry comes due at its history's ``due_at``, a held notice at its
``mall-notify-hold-until`` header. A due retry goes back to the partition of the send topic it was
first read from, where its ledger entry lives; a held notice to its buyer's partition (by key);
each in the same transaction as the delay topic's offset.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping

from aiolimiter import AsyncLimiter
from confluent_kafka import TopicPartition
from prometheus_client import Counter as CounterMetric
from prometheus_client import Gauge

from streams.core.failures import Failure
from streams.core.quiet_hours import HOLD_HEADER
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import Lane, LaneConfig, Partition
from streams.runtime.lanes.stage import RetryStage

log = get_logger("forwarder")
BATCH = 500


class ForwarderLane(Lane):
    def __init__(
        self,
        config: LaneConfig,
        routes: Mapping[str, str],
        stage: RetryStage,
        transactions: Transactions,
        clock: Callable[[], float] = time.time,
        send_topics: frozenset[str] = frozenset(),
        *,
        name: str = "retry",
        rate_per_second: float | None = None,
        forwarded: CounterMetric = metrics.RETRIES_FORWARDED,
        waiting: Gauge = metrics.RETRY_WAITING,
    ) -> None:
        super().__init__(name, config, transactions)
        self._routes = dict(routes)
        """delay topic -> the topic its records go back to"""
        self._send_topics = send_topics | frozenset(self._routes.values())
        self._stage = stage
        self._clock = clock
        self._waiting: dict[Partition, float] = {}
        """paused partitions -> when their head record is due (epoch seconds)"""
        self._batch = BATCH if rate_per_second is None else max(1, min(BATCH, int(rate_per_second)))
        self._rate = AsyncLimiter(rate_per_second, 1.0) if rate_per_second is not None else None
        self._forwarded = forwarded
        self._waiting_gauge = waiting

    def wait_seconds(self) -> float:
        """Take again no later than when a paused partition comes due."""
        if not self._waiting:
            return self.config.wait_seconds
        return max(0.0, min(self.config.wait_seconds, min(self._waiting.values()) - self._clock()))

    async def room(self, stopping: asyncio.Event) -> int:
        now = self._clock()
        due = [partition for partition, at in self._waiting.items() if at <= now]
        if due and self.consumer is not None:
            await self.consumer.resume([TopicPartition(topic, number) for topic, number in due])
            for partition in due:
                del self._waiting[partition]
        self._waiting_gauge.set(len(self._waiting))
        await self.transactions.room()
        if self._rate is not None and not stopping.is_set():
            await self._rate.acquire(self._batch)
        return 0 if stopping.is_set() else self._batch

    async def handle(self, records: list[ConsumedRecord]) -> None:
        by_partition: dict[Partition, list[ConsumedRecord]] = defaultdict(list)
        for record in records:
            by_partition[(record.topic, record.partition)].append(record)
        now = self._clock()
        forwards: list[tuple[ConsumedRecord, list[Write]]] = []
        for partition, waiting in by_partition.items():
            for record in waiting:
                history = record.history
                due = _due(record, history)
                if due > now:  # the rest of this partition is later still: wait without blocking the others
                    await self._pause(partition, record.offset, due)
                    break
                forwards.append((record, [self._back(record, history)]))
                metrics.RETRY_LATENESS.observe(max(0.0, now - due) if due else 0.0)
        for record, writes in forwards:
            self.finish(record, writes)
        for topic, count in Counter(record.topic for record, _ in forwards).items():
            self._forwarded.labels(topic).inc(count)
        if forwards:
            log.debug("forwarded", extra=fields(lane=self.name, count=len(forwards)))  # counted in metrics

    def _back(self, record: ConsumedRecord, history: Failure | None) -> Write:
        """The record on its way back, to the send topic and partition it was first read from (a
        code to the codes' topic), else to its channel's send topic."""
        target = self._routes[record.topic]
        if history is not None and history.origin.topic in self._send_topics:
            target = history.origin.topic
        partition = history.partition_in(target) if history else None
        return Write(target, record.key, record.value, record.headers, partition=partition)

    async def _pause(self, partition: Partition, offset: int, due: float) -> None:
        assert self.consumer is not None
        topic, number = partition
        await self.consumer.pause([TopicPartition(topic, number)])
        await self.consumer.seek(TopicPartition(topic, number, offset))
        self.offsets.rewind(partition, offset)
        self._waiting[partition] = due

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return self._stage.unwritable(record, detail)

    def released(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            self._waiting.pop(partition, None)


def _due(record: ConsumedRecord, history: Failure | None) -> float:
    """When a record comes due (epoch seconds; 0: now): a held notice's header, a retry's history."""
    held = next((value for name, value in record.headers if name == HOLD_HEADER), None)
    if held is not None:
        try:
            return float(held)
        except ValueError:  # not ours: back at once, the buyers lane decides again
            return 0.0
    return history.due_at.timestamp() if history and history.due_at else 0.0
