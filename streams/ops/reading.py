"""Read back what the pipeline wrote (outcomes, dead letters): demo, tests, command line."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from streams.runtime.kafka.clients import reader_config
from streams.runtime.kafka.records import ConsumedRecord, consumed
from streams.runtime.kafka.topic_reader import METADATA_TIMEOUT_SECONDS, partitions_of, read_to_end

POLL_SECONDS = 0.2
ReadRecord = ConsumedRecord


def _watermarks(bootstrap_servers: str, topic: str, index: int) -> dict[int, int]:
    consumer = Consumer(reader_config(bootstrap_servers))
    try:
        return {
            number: consumer.get_watermark_offsets(
                TopicPartition(topic, number), timeout=METADATA_TIMEOUT_SECONDS
            )[index]
            for number in partitions_of(consumer, topic)
        }
    finally:
        consumer.close()


def start_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """The oldest retained offset of every partition of ``topic``."""
    return _watermarks(bootstrap_servers, topic, 0)


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """The next offset of every partition of ``topic``: where records written from now on start."""
    return _watermarks(bootstrap_servers, topic, 1)


def read_until(
    bootstrap_servers: str,
    topic: str,
    start: dict[int, int],
    done: Callable[[list[ReadRecord]], bool],
    timeout: float,
) -> list[ReadRecord]:
    """Read ``topic`` from ``start`` until ``done(records so far)`` or ``timeout`` seconds pass."""
    records: list[ReadRecord] = []
    if done(records):
        return records
    consumer = Consumer(reader_config(bootstrap_servers))
    consumer.assign([TopicPartition(topic, partition, offset) for partition, offset in start.items()])
    deadline = time.monotonic() + timeout
    try:
        while not done(records) and time.monotonic() < deadline:
            records += [consumed(m) for m in consumer.consume(500, POLL_SECONDS) if m.error() is None]
    finally:
        consumer.close()
    return records


def read_all(bootstrap_servers: str, topic: str, timeout: float) -> list[ReadRecord]:
    """Every record ``topic`` retains now, oldest first per partition."""
    return [consumed(message) for message in read_to_end(bootstrap_servers, topic, None, timeout)]
