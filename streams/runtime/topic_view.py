"""A topic read as a table: every partition from its oldest record, then kept up to date.

The ledger (outcomes) and the shop settings are both read this way by every worker: no
consumer group, so each worker sees all of it; ``ready`` once it has caught up with what the
topic held when the view started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.logs import fields, get_logger
from streams.runtime.background import BackgroundLoop

log = get_logger("topic_view")
POLL_MS = 200
Apply = Callable[[bytes | None, bytes | None], None]


class TopicView(BackgroundLoop):
    def __init__(self, bootstrap_servers: str, topic: str, apply: Apply) -> None:
        super().__init__()
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self._apply = apply
        self._ready = asyncio.Event()

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def run(self) -> None:
        self.started()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            ends = await consumer.end_offsets(await self._assign_all(consumer))
            log.info("loading", extra=fields(topic=self.topic, records=sum(ends.values())))
            while not self.stopping:
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=5000)
                for records in batch.values():
                    for record in records:
                        self._apply(record.key, record.value)
                if not self._ready.is_set() and await self._caught_up(consumer, ends):
                    self._ready.set()
                    log.info("loaded", extra=fields(topic=self.topic))
        finally:
            await consumer.stop()
            self.finished()

    async def _assign_all(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        numbers = consumer.partitions_for_topic(self.topic)
        while not numbers:
            await consumer._client.force_metadata_update()
            numbers = consumer.partitions_for_topic(self.topic)
            if not numbers:
                await asyncio.sleep(0.5)
        partitions = [TopicPartition(self.topic, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return partitions

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for partition, end in ends.items():
            if await consumer.position(partition) < end:
                return False
        return True
