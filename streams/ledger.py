"""The ledger: the outcomes topic, written once per delivery and read back by every worker.

A delivery whose latest outcome is ``delivered`` is never sent again: not when its record is read
a second time after a crash (at-least-once), not when it is forwarded twice from a retry topic,
not when an SRE replays it from the dead-letter topic. The outcome record *is* the ledger entry,
so there is no window where one was written without the other.

Each worker reads the whole outcomes topic (no consumer group: every partition, from the oldest
retained record) before its sender starts, then keeps tailing it, so deliveries written by other
workers are known too. It keeps the latest status of every key. (faust's
GlobalTable would do this, but with faust-streaming 0.15 its group assignment never completes
when the table's changelog is an existing topic; see the closing note of issue 6.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.logs import fields, get_logger
from streams.outcomes import Outcome, Status
from streams.stages import Publisher

log = get_logger("ledger")
POLL_MS = 200


def final_status(value: bytes | None) -> Status | None:
    """The status of an outcome record, or None for a record that is not one."""
    try:
        document: Any = orjson.loads(value or b"")
        return Status(document["status"])
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return None


class OutcomeLedger:
    def __init__(self, bootstrap_servers: str, topic: str, publisher: Publisher) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._publisher = publisher
        self._final: dict[str, Status] = {}
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def final(self, key: str) -> Status | None:
        """The latest final outcome of a delivery id (or event key), if any."""
        return self._final.get(key)

    async def record(self, outcome: Outcome) -> None:
        """Write a final outcome (acknowledged by Kafka) and know it at once."""
        key = outcome.key()
        await self._publisher.publish(self._topic, key, outcome.to_json())
        self._final[key.decode()] = outcome.status

    async def run(self) -> None:
        self._running = True
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = await self._assign_all(consumer)
            ends = await consumer.end_offsets(partitions)
            log.info("ledger loading", extra=fields(topic=self._topic, records=sum(ends.values())))
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=5000)
                for records in batch.values():
                    for record in records:
                        status = final_status(record.value)
                        if status is not None and record.key:
                            self._final[record.key.decode()] = status
                if not self._ready.is_set() and all(await self._caught_up(consumer, ends)):
                    self._ready.set()
                    log.info("ledger ready", extra=fields(outcomes=len(self._final)))
        finally:
            await consumer.stop()
            self._stopped.set()

    async def stop(self) -> None:
        self._stopping.set()
        if self._running:
            await self._stopped.wait()

    async def _assign_all(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        numbers = consumer.partitions_for_topic(self._topic)
        while not numbers:
            await consumer._client.force_metadata_update()
            numbers = consumer.partitions_for_topic(self._topic)
            if not numbers:
                await asyncio.sleep(0.5)
        partitions = [TopicPartition(self._topic, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return partitions

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> list[bool]:
        return [await consumer.position(partition) >= end for partition, end in ends.items()]
