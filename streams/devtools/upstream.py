"""Publish events as an upstream service would (confluent-kafka producer, acks=all, idempotent).

Used by ``mall-notify publish`` and the demo. Each line of the input is one record value; the
topic comes from the event type (``topics.yaml``), the key is the order number so one order's
events stay in order. A line that is not an event we know still goes out, to the fallback
topic, byte for byte: this is how the demo shows what the pipeline does with bad input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message

from streams.core.topics import Topics
from streams.runtime.kafka.clients import idempotent_producer

FLUSH_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    value: bytes


def routing_of(value: bytes, topics: Topics, fallback_topic: str) -> tuple[str, bytes | None, dict[str, Any]]:
    """Topic, key and the parsed document (empty when it is not JSON) for one record value."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return fallback_topic, None, {}
    if not isinstance(document, dict):
        return fallback_topic, None, {}
    topic = topics.event_topic_for(str(document.get("type"))) or fallback_topic
    data = document.get("data")
    order_no = data.get("order_no") if isinstance(data, dict) else None
    key = order_no or document.get("subject") or document.get("id")
    return topic, str(key).encode() if key else None, document


def publish_values(
    bootstrap_servers: str, topics: Topics, values: Iterable[bytes], **producer_config: object
) -> list[Published]:
    """Publish each value and return where it landed, in input order. ``producer_config``: more
    librdkafka settings (``message_max_bytes=...`` for records over 1 MB)."""
    producer = idempotent_producer(bootstrap_servers, **{"linger_ms": 5, **producer_config})
    fallback = topics.event_topics[0]
    results: dict[int, Published] = {}
    failures: list[str] = []

    def reporter(index: int, document: dict[str, Any], value: bytes) -> Any:
        def report(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(str(error))
                return
            results[index] = Published(
                message.topic() or "",
                message.partition() or 0,
                message.offset() or 0,
                document.get("id"),
                document.get("type"),
                value,
            )

        return report

    for index, value in enumerate(values):
        topic, key, document = routing_of(value, topics, fallback)
        producer.produce(topic, value=value, key=key, on_delivery=reporter(index, document, value))
        producer.poll(0)
    remaining = producer.flush(FLUSH_TIMEOUT_SECONDS)
    if failures or remaining:
        raise RuntimeError(f"could not publish {len(failures) + remaining} records: {failures[:3]}")
    return [results[index] for index in sorted(results)]
