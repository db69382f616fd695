"""An idempotent producer for asyncio code that writes a few records and waits for each (the admin
API saving a shop's settings). The worker writes through its transactions instead."""

from __future__ import annotations

import asyncio
import threading
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.runtime.kafka.clients import produce, producer_config
from streams.runtime.kafka.records import Write

POLL_SECONDS = 0.1
Outcome = asyncio.Future[KafkaError | None]


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

    async def write(self, writes: list[Write]) -> list[KafkaError | None]:
        """Write the records; for each, None once Kafka has it, or why it failed."""
        if self._loop is None:
            raise RuntimeError("Publisher.start() was not called")
        outcomes = [self._loop.create_future() for _ in writes]
        for write, outcome in zip(writes, outcomes, strict=True):
            try:
                produce(self._producer, write, partial(self._delivered, outcome))
            except KafkaException as exc:
                outcome.set_result(exc.args[0])
            except BufferError:
                outcome.set_result(KafkaError(KafkaError._QUEUE_FULL))
        return list(await asyncio.gather(*outcomes))

    def _delivered(self, outcome: Outcome, error: KafkaError | None, _: Message) -> None:
        """Runs on the polling thread."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle, outcome, error)

    async def close(self, wait_seconds: float) -> int:
        """Wait up to ``wait_seconds`` for what is still queued; how many records were left unwritten."""
        self._stopping.set()
        if self._poller.is_alive():
            await asyncio.to_thread(self._poller.join)
        return await asyncio.to_thread(self._producer.flush, wait_seconds)


def _settle(outcome: Outcome, error: KafkaError | None) -> None:
    """A report for a write whose caller gave up waiting (a request cut off, a task cancelled during
    an outage) settles nothing: setting it then would raise on the loop."""
    if not outcome.done():
        outcome.set_result(error)
