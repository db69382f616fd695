"""Records as the runtime handles them: one read from Kafka, and one to write."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from confluent_kafka import Message

from streams.core.failures import Failure, Headers
from streams.core.source import SourceRecord


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def source(self) -> SourceRecord:
        return SourceRecord(self.topic, self.partition, self.offset)

    @cached_property
    def history(self) -> Failure | None:
        """The failure history the record carries (a retry or a replay), read once."""
        return Failure.from_headers(self.headers) if self.headers else None


def consumed(message: Message) -> ConsumedRecord:
    """A record as confluent-kafka returns it (headers: None, or a list of (name, bytes | None))."""
    headers = message.headers() or []
    items = headers.items() if isinstance(headers, dict) else headers
    return ConsumedRecord(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        [(name, _bytes(value)) for name, value in items],
    )


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


@dataclass(frozen=True, slots=True)
class Write:
    """A record to write. ``partition`` None: the key decides (murmur2, as Kafka's own clients)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    partition: int | None = None
