"""A compacted topic as a table every worker and the admin API hold: read whole, then followed.

The shops' settings (a saved change applies to the next event without a restart) and the SMS
accounts (purchases and charges) are followed this way. This is global state on purpose: any
event may be for any shop, and both topics are compacted, so they grow with the number of shops,
not with history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka.aio import AIOConsumer

from streams.core.errors import MallNotifyError
from streams.logs import Repeats, fields, get_logger
from streams.runtime.kafka.clients import admin_client, reader_config, stable_bounds
from streams.runtime.kafka.topic_reader import METADATA_TIMEOUT_SECONDS

log = get_logger("follower")
WAITING = Repeats(log, interval_seconds=30.0)
BATCH = 500
WAIT_SECONDS = 0.5
RETRY_SECONDS = 2.0


class Table(Protocol):
    def apply(self, key: bytes | None, value: bytes | None) -> int | str:
        """Take one record: the shop id it changed, or why it was refused."""
        ...

    def __len__(self) -> int: ...


class NoTopic(MallNotifyError):
    """The cluster answers but has no such topic (yet)."""


class TableFollower:
    """Keeps a table up to date with a compacted topic; ``loaded`` once it has read what the topic
    held when it started. ``on_change(shop_id)`` after every accepted record."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        table: Table,
        on_change: Callable[[int], None] = lambda _: None,
        what: str = "shop settings",
    ) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self.table = table
        self._on_change = on_change
        self.what = what
        self.loaded = asyncio.Event()
        self._consumer: AIOConsumer | None = None
        self._numbers: list[int] = []
        self._read = asyncio.Event()
        """set after every read from the topic"""

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = AIOConsumer(reader_config(self._bootstrap, on_loop=True), max_workers=2)
        self._consumer = consumer
        try:
            ends = await self._start_when_kafka_answers(consumer, stopping)
            if ends is None:
                return
            log.info(f"loading {self.what}", extra=fields(topic=self.topic))
            while not stopping.is_set():
                for message in await consumer.consume(BATCH, WAIT_SECONDS):
                    if message.error() is None:
                        self._apply(message.key(), message.value())
                self._read.set()
                if not self.loaded.is_set() and await self._caught_up(consumer, ends):
                    self.loaded.set()
                    log.info(f"{self.what} loaded", extra=fields(topic=self.topic, shops=len(self.table)))
        finally:
            self._consumer = None
            self.loaded.clear()
            await consumer.close()

    async def up_to_now(self) -> None:
        """Return once the table holds everything committed to the topic when this was called
        (waits while the table is not loaded; KafkaException when the cluster does not answer). A
        transaction still open then (a crashed writer's) is not waited for."""
        await self.loaded.wait()
        consumer = self._consumer
        if consumer is None:
            raise KafkaException(KafkaError(KafkaError._STATE, f"the {self.what} are not followed"))
        asked = [(self.topic, number) for number in self._numbers]
        # a client of its own each time: fresh metadata (after a broker restart a long-lived one
        # asks with a stale leader epoch and is refused)
        admin = admin_client(self._bootstrap)
        bounds = await asyncio.to_thread(stable_bounds, admin, asked, METADATA_TIMEOUT_SECONDS)
        ends = {number: end for (_, number), (start, end) in bounds.items() if end > start}
        while not await self._caught_up(consumer, ends):
            self._read.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._read.wait(), WAIT_SECONDS)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        applied = self.table.apply(key, value)
        if isinstance(applied, str):
            log.error(f"a record of the {self.what} refused", extra=fields(detail=applied))
        else:
            self._on_change(applied)

    async def _start_when_kafka_answers(
        self, consumer: AIOConsumer, stopping: asyncio.Event
    ) -> dict[int, int] | None:
        """:meth:`_start`, tried again every few seconds while Kafka does not answer or the topic
        does not exist yet (the process reports not ready meanwhile); None when asked to stop
        first."""
        while not stopping.is_set():
            try:
                return await self._start(consumer)
            except KafkaException as exc:
                WAITING.warning(f"waiting for Kafka to load the {self.what}", detail=str(exc.args[0]))
            except NoTopic as exc:
                WAITING.warning(str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), RETRY_SECONDS)
        return None

    async def _start(self, consumer: AIOConsumer) -> dict[int, int]:
        """Assign every partition from its oldest record; the ends to catch up with."""
        metadata = await consumer.list_topics(self.topic, timeout=METADATA_TIMEOUT_SECONDS)
        numbers = sorted(metadata.topics[self.topic].partitions)
        if not numbers:
            raise NoTopic(f"waiting for the topic {self.topic}: run `mall-notify topics ensure`")
        self._numbers = numbers
        ends = {}
        for number in numbers:
            low, high = await consumer.get_watermark_offsets(
                TopicPartition(self.topic, number), timeout=METADATA_TIMEOUT_SECONDS
            )
            if high > low:
                ends[number] = high
        await consumer.assign([TopicPartition(self.topic, number, OFFSET_BEGINNING) for number in numbers])
        return ends

    async def _caught_up(self, consumer: AIOConsumer, ends: dict[int, int]) -> bool:
        positions = await consumer.position([TopicPartition(self.topic, number) for number in ends])
        return all(position.offset >= ends[position.partition] for position in positions)
