"""The ledger: the outcomes topic, written once per delivery and read back by every worker.

A delivery whose latest outcome is ``delivered`` is never sent again: not when its record is read
a second time after a crash (at-least-once), not when it is forwarded twice from a retry topic,
not when an SRE replays it from the dead-letter topic. The outcome record *is* the ledger entry,
so there is no window where one was written without the other.

Each worker reads the whole outcomes topic (no consumer group: every partition, from the oldest
retained record) before its sender starts, then keeps tailing it, so deliveries written by other
workers are known too. It keeps the latest status of every key. (faust's
GlobalTable would do this, but with faust-streaming 0.15 its group assignment never completes
when the table's changelog is an existing topic; see the closing note of issue 6.)
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.outcomes import Outcome, Status
from streams.stages import Publisher
from streams.topic_view import TopicView


def final_status(value: bytes | None) -> Status | None:
    """The status of an outcome record, or None for a record that is not one."""
    try:
        document: Any = orjson.loads(value or b"")
        return Status(document["status"])
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return None


class OutcomeLedger:
    def __init__(self, bootstrap_servers: str, topic: str, publisher: Publisher) -> None:
        self._publisher = publisher
        self._final: dict[str, Status] = {}
        self.view = TopicView(bootstrap_servers, topic, self._apply)

    @property
    def is_ready(self) -> bool:
        return self.view.is_ready

    def final(self, key: str) -> Status | None:
        """The latest final outcome of a delivery id (or event key), if any."""
        return self._final.get(key)

    async def record(self, outcome: Outcome) -> None:
        """Write a final outcome (acknowledged by Kafka) and know it at once."""
        key = outcome.key()
        await self._publisher.publish(self.view.topic, key, outcome.to_json())
        self._final[key.decode()] = outcome.status

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        status = final_status(value)
        if status is not None and key:
            self._final[key.decode()] = status
