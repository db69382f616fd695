"""Delayed retries without blocking: records wait in the retry topics until due, then go back to
their channel's send topic.

Kafka has no delayed delivery. As Spring Kafka's retryable topics do, the forwarder reads each
retry topic with its own consumer group, and when the head record of a partition is not due yet
it seeks back to it and *pauses that partition* until the due time (other partitions and the
main send topics keep flowing). A due record is produced to its send topic (idempotent producer,
acks=all) before its offset is committed, so a crash re-forwards rather than loses it; the
sender's ledger keeps such a duplicate from reaching the user twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.core.failures import Failure
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.background import BackgroundLoop

log = get_logger("forwarder")
MAX_WAIT_SECONDS = 0.2
BATCH = 500


def due_time(headers: Any) -> float:
    """When a retry record is due, in epoch seconds; a record without a readable due time is due now."""
    failure = Failure.from_headers([(name, bytes(value)) for name, value in headers or []])
    return failure.due_at.timestamp() if failure and failure.due_at else 0.0


class RetryForwarder(BackgroundLoop):
    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        routes: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._routes = dict(routes)
        """retry topic -> the send topic its records go back to"""
        self._clock = clock
        self._waiting: dict[TopicPartition, float] = {}

    async def run(self) -> None:
        self.started()
        consumer = AIOKafkaConsumer(
            *self._routes,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True)
        await consumer.start()
        await producer.start()
        log.info("retry forwarder started", extra=fields(topics=sorted(self._routes)))
        try:
            while not self.stopping:
                self._resume_due(consumer)
                batch = await consumer.getmany(timeout_ms=int(self._wait_seconds() * 1000), max_records=BATCH)
                for partition, records in batch.items():
                    await self._forward(consumer, producer, partition, records)
        finally:
            await consumer.stop()
            await producer.stop()
            self.finished()

    def _wait_seconds(self) -> float:
        """Poll at least every 200 ms, sooner when a paused partition comes due."""
        if not self._waiting:
            return MAX_WAIT_SECONDS
        return max(0.0, min(MAX_WAIT_SECONDS, min(self._waiting.values()) - self._clock()))

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        now = self._clock()
        for partition, due in list(self._waiting.items()):
            if partition not in assigned or due <= now:
                del self._waiting[partition]
                if partition in assigned:
                    consumer.resume(partition)
        metrics.RETRY_WAITING.set(len(self._waiting))

    async def _forward(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        partition: TopicPartition,
        records: list[Any],
    ) -> None:
        now = self._clock()
        pending = []
        next_offset = None
        for record in records:
            due = due_time(record.headers)
            if due > now:  # the rest of this partition is later still: wait without blocking the others
                consumer.seek(partition, record.offset)
                consumer.pause(partition)
                self._waiting[partition] = due
                break
            target = self._routes[partition.topic]
            pending.append(
                await producer.send(
                    target, value=record.value, key=record.key, headers=list(record.headers or [])
                )
            )
            metrics.RETRY_LATENESS.observe(max(0.0, now - due) if due else 0.0)
            next_offset = record.offset + 1
        if next_offset is None:
            return
        await asyncio.gather(*pending)
        await consumer.commit({partition: next_offset})
        metrics.RETRIES_FORWARDED.labels(partition.topic).inc(len(pending))
        log.info(
            "retries forwarded",
            extra=fields(topic=partition.topic, partition=partition.partition, count=len(pending)),
        )
