"""The ledger: the outcomes topic, written once per delivery and read back by every worker.

A delivery whose latest outcome is ``delivered`` is never sent again: not when its record is read
a second time after a crash (at-least-once), not when it is forwarded twice from a retry topic,
not when an SRE replays it from the dead-letter topic. The outcome record *is* the ledger entry,
so there is no window where one was written without the other.

Each worker reads the whole outcomes topic (no consumer group: every partition, from the oldest
retained record) before its sender starts, then keeps tailing it, so deliveries written by other
workers are known too. It keeps the latest status of every key for a TTL. (faust's
GlobalTable would do this, but with faust-streaming 0.15 its group assignment never completes
when the table's changelog is an existing topic; see the closing note of issue 6.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from streams.core.outcomes import Outcome, Status
from streams.runtime.stages import Publisher
from streams.runtime.topic_view import TopicView


def final_status(value: bytes | None) -> tuple[Status, float] | None:
    """The status of an outcome record and when it was decided (epoch seconds), or None."""
    try:
        document: Any = orjson.loads(value or b"")
        return Status(document["status"]), datetime.fromisoformat(document["at"]).timestamp()
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return None


class OutcomeLedger:
    """Remembers outcomes for ``ttl_seconds`` (in memory; the topic's retention should be as long):
    a record read again after that is treated as new."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        publisher: Publisher,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publisher = publisher
        self._ttl = ttl_seconds
        self._clock = clock
        self._final: dict[str, tuple[Status, float]] = {}
        """key -> (status, decided at), oldest first, so expired entries are dropped from the front"""
        self.view = TopicView(bootstrap_servers, topic, self._apply)

    @property
    def is_ready(self) -> bool:
        return self.view.is_ready

    def __len__(self) -> int:
        return len(self._final)

    def final(self, key: str) -> Status | None:
        """The latest final outcome of a delivery id (or event key) within the TTL, if any."""
        self._forget_expired()
        entry = self._final.get(key)
        return entry[0] if entry else None

    async def record(self, outcome: Outcome) -> None:
        """Write a final outcome (acknowledged by Kafka) and know it at once."""
        key = outcome.key()
        await self._publisher.publish(self.view.topic, key, outcome.to_json())
        self._remember(key.decode(), outcome.status, outcome.at.timestamp())

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        decided = final_status(value)
        if decided is not None and key:
            self._remember(key.decode(), *decided)

    def _remember(self, key: str, status: Status, at: float) -> None:
        self._final.pop(key, None)  # re-inserted at the end: the dict stays ordered by time
        if at > self._clock() - self._ttl:
            self._final[key] = (status, at)

    def _forget_expired(self) -> None:
        horizon = self._clock() - self._ttl
        while self._final:
            key, (_, at) = next(iter(self._final.items()))
            if at > horizon:
                return
            del self._final[key]
