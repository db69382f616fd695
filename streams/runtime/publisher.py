"""The worker's one Kafka producer, for asyncio code.

Records are produced without waiting. An :class:`Acks` collects the acknowledgements of a group
of writes (a router batch, one delivery's outcome and ledger entry), awaited once: nothing that
depends on them (an offset stored for commit) happens before Kafka has them. Delivery reports are
served by a thread that polls the producer, so the event loop never blocks on Kafka.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.runtime.clients import producer_config
from streams.runtime.records import Write

POLL_SECONDS = 0.1
PARTITION_BY_KEY = -1
"""librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks the partition from the key"""
QUEUE_FULL_WAIT_SECONDS = 0.05


class Acks:
    """The acknowledgements of a group of writes, each known by a tag; failed ones keep their error."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending = 0
        self._sealed = False
        self._done: asyncio.Future[None] = loop.create_future()
        self.failed: dict[int, KafkaError] = {}

    def callback(self, tag: int) -> partial[None]:
        """The ``on_delivery`` callback of a write; call :meth:`taken` once the producer has it."""
        return partial(self._delivered, tag)

    def taken(self) -> None:
        """One more write to wait for. (Its report may even have come first: the count is only
        read once the group is sealed.)"""
        with self._lock:
            self._pending += 1

    def _delivered(self, tag: int, error: KafkaError | None, _: Message) -> None:
        """Runs on the polling thread."""
        with self._lock:
            self._pending -= 1
            if error is not None:
                self.failed[tag] = error
            finished = self._sealed and self._pending == 0
        if finished:
            self._loop.call_soon_threadsafe(self._finish)

    def refused(self, tag: int, error: KafkaError) -> None:
        """A write the producer refused at once (too large for the client's limit, say)."""
        with self._lock:
            self.failed[tag] = error

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    async def wait(self) -> dict[int, KafkaError]:
        """Wait for every write; the failed ones by tag."""
        with self._lock:
            self._sealed = True
            finished = self._pending == 0
        if finished:
            self._finish()
        await self._done
        return self.failed


class Publisher:
    def __init__(self, bootstrap_servers: str) -> None:
        self._producer = Producer(producer_config(bootstrap_servers))
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-producer-poll", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(POLL_SECONDS)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._poller.start()

    def acks(self) -> Acks:
        if self._loop is None:
            raise RuntimeError("Publisher.start() was not called")
        return Acks(self._loop)

    async def produce(self, acks: Acks, tag: int, write: Write) -> None:
        """Hand one write to the producer (waiting only while its queue is full)."""
        partition = PARTITION_BY_KEY if write.partition is None else write.partition
        headers = cast(list[tuple[str, str | bytes | None]] | None, write.headers)  # the same, widened
        while True:
            try:
                self._producer.produce(
                    write.topic,
                    value=write.value,
                    key=write.key,
                    headers=headers,
                    partition=partition,
                    on_delivery=acks.callback(tag),
                )
            except BufferError:  # the local queue is full: the polling thread drains it
                await asyncio.sleep(QUEUE_FULL_WAIT_SECONDS)
                continue
            except KafkaException as exc:
                acks.refused(tag, exc.args[0])
                return
            acks.taken()
            return

    async def write(self, writes: list[Write]) -> dict[int, KafkaError]:
        """Write and wait; the failed writes by index."""
        acks = self.acks()
        for index, write in enumerate(writes):
            await self.produce(acks, index, write)
        return await acks.wait()

    async def close(self, wait_seconds: float) -> int:
        """Wait up to ``wait_seconds`` for what is still queued; how many records were left unwritten."""
        self._stopping.set()
        if self._poller.is_alive():
            await asyncio.to_thread(self._poller.join)
        return await asyncio.to_thread(self._producer.flush, wait_seconds)
