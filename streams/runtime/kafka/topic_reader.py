"""Reading partitions of a topic from their oldest record to their current end (synchronous:
the ledger's restore runs it in a thread, the command line calls it directly)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from streams.runtime.kafka.clients import reader_config

METADATA_TIMEOUT_SECONDS = 10.0
BATCH = 2000


def partitions_of(consumer: Consumer, topic: str) -> list[int]:
    """The partition numbers of ``topic``; KafkaException when the cluster does not know it."""
    metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_SECONDS).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    return sorted(metadata.partitions)


def read_to_end(
    bootstrap_servers: str, topic: str, partitions: list[int] | None, timeout: float
) -> Iterator[Message]:
    """Every retained record of the partitions (all when None) up to their end as of the call, in
    offset order per partition. Raises TimeoutError when that takes longer than ``timeout`` seconds."""
    consumer = Consumer(reader_config(bootstrap_servers))
    try:
        numbers = partitions_of(consumer, topic) if partitions is None else partitions
        ranges = {number: watermarks(consumer, topic, number) for number in numbers}
        yield from read_between(consumer, topic, ranges, timeout)
    finally:
        consumer.close()


def watermarks(consumer: Consumer, topic: str, number: int) -> tuple[int, int]:
    """The oldest offset retained and the end (next offset) of a partition."""
    low, high = consumer.get_watermark_offsets(
        TopicPartition(topic, number), timeout=METADATA_TIMEOUT_SECONDS
    )
    return int(low), int(high)


def read_between(
    consumer: Consumer, topic: str, ranges: dict[int, tuple[int, int]], timeout: float
) -> Iterator[Message]:
    """The records of each partition from its start offset to before its end offset, in offset order
    per partition. Done by position, so compacted gaps and control records are fine. Raises
    TimeoutError when that takes longer than ``timeout`` seconds."""
    ends = {number: end for number, (start, end) in ranges.items() if end > start}
    if not ends:
        return
    consumer.assign([TopicPartition(topic, number, ranges[number][0]) for number in ends])
    deadline = time.monotonic() + timeout
    while ends:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {topic} took longer than {timeout:.0f} s")
        yield from (m for m in consumer.consume(BATCH, 0.2) if m.error() is None)
        for position in consumer.position([TopicPartition(topic, number) for number in ends]):
            if position.offset >= ends[position.partition]:
                del ends[position.partition]
    consumer.unassign()
