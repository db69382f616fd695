"""Read back what the pipeline wrote (outcomes, dead letters) from a known position: demo, tests, CLI."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.core.failures import Headers

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers


def _as_bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def _consumer(bootstrap_servers: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"mall-notify-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 4,
        }
    )


def _watermarks(bootstrap_servers: str, topic: str, index: int) -> dict[int, int]:
    consumer = _consumer(bootstrap_servers)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[index] for p in partitions
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
    consumer = _consumer(bootstrap_servers)
    consumer.assign([TopicPartition(topic, partition, offset) for partition, offset in start.items()])
    records: list[ReadRecord] = []
    if done(records):
        consumer.close()
        return records
    deadline = time.monotonic() + timeout
    try:
        while not done(records) and time.monotonic() < deadline:
            message = consumer.poll(POLL_SECONDS)
            if message is None or message.error():
                continue
            raw_headers = message.headers() or []
            items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
            headers = [(name, _as_bytes(value)) for name, value in items]
            records.append(
                ReadRecord(
                    topic,
                    message.partition() or 0,
                    message.offset() or 0,
                    message.key(),
                    message.value() or b"",
                    headers,
                )
            )
    finally:
        consumer.close()
    return records


def read_all(bootstrap_servers: str, topic: str, timeout: float) -> list[ReadRecord]:
    """Every record ``topic`` retains now, oldest first per partition. Done when each partition's
    last record (as of the call) is read: a compacted topic has gaps, so records are not counted."""
    start, ends = start_offsets(bootstrap_servers, topic), end_offsets(bootstrap_servers, topic)
    last = {partition: end - 1 for partition, end in ends.items() if end > start[partition]}
    seen: dict[int, int] = {}
    counted = 0

    def reached_the_end(records: list[ReadRecord]) -> bool:
        nonlocal counted
        for record in records[counted:]:
            seen[record.partition] = max(seen.get(record.partition, -1), record.offset)
        counted = len(records)
        return all(seen.get(partition, -1) >= offset for partition, offset in last.items())

    return read_until(bootstrap_servers, topic, start, reached_the_end, timeout)
