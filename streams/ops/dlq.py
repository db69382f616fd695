"""Reading, filtering and replaying the dead-letter topic (``mall-notify dlq ...``).

A replay writes the original bytes back where they can be processed again: a failed delivery to
its channel's send topic, a failed event to the event topic it came from. The record carries its
history with ``replays`` + 1 and attempts starting over. Replays are idempotent because the
sender checks the ledger: a delivery already delivered (by an earlier replay, or meanwhile) is
not sent again, so replaying the same records twice notifies nobody twice.

A record that failed again after a replay is dead-lettered again: the topic then holds two
letters of one delivery (or event). Only the latest is replayed (:func:`latest_letters`), so a
second replay never picks up what the first one brought back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from channels.base import ChannelName, ErrorClass
from streams.core.failures import TOO_LARGE, Failure, Stage
from streams.core.topics import Topics
from streams.ops.reading import ReadRecord, read_all
from streams.runtime.kafka.clients import idempotent_producer, partition_argument


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, with what can be read from its payload."""

    record: ReadRecord
    failure: Failure | None
    shop_id: int | None = None
    scene: str | None = None
    channel: ChannelName | None = None

    @property
    def coordinates(self) -> str:
        return f"{self.record.partition}@{self.record.offset}"

    @property
    def identity(self) -> str:
        """What failed: the delivery, or else the record first read (an event)."""
        failure = self.failure
        if failure is None:
            return f"dlq:{self.coordinates}"
        return failure.delivery_id or str(failure.origin)

    @property
    def known_permanent(self) -> bool:
        """Replaying it can only fail the same way, unless something was fixed meanwhile: the
        provider said so (a user unsubscribed, a bad template), or the input itself was refused."""
        failure = self.failure
        return failure is not None and (
            failure.error_class is ErrorClass.PERMANENT or failure.stage is Stage.PARSE
        )


def latest_letters(letters: Iterable[DeadLetter]) -> tuple[list[DeadLetter], int]:
    """The latest letter of each delivery or event (the others came before a replay that failed
    again), and how many were left out. Input and output in topic order."""
    latest: dict[str, DeadLetter] = {}
    total = 0
    for letter in letters:
        total += 1
        known = latest.get(letter.identity)
        if known is None or _later(letter, known):
            latest[letter.identity] = letter
    kept = sorted(latest.values(), key=lambda letter: (letter.record.partition, letter.record.offset))
    return kept, total - len(kept)


def _later(letter: DeadLetter, than: DeadLetter) -> bool:
    replays = (letter.failure.replays if letter.failure else 0, than.failure.replays if than.failure else 0)
    if replays[0] != replays[1]:
        return replays[0] > replays[1]
    return (letter.record.partition, letter.record.offset) > (than.record.partition, than.record.offset)


def describe(record: ReadRecord) -> DeadLetter:
    failure = Failure.from_headers(record.headers)
    try:
        payload: Any = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        return DeadLetter(record, failure)
    if failure is not None and failure.stage is Stage.SEND:
        delivery = payload.get("delivery")
        channel = delivery.get("channel") if isinstance(delivery, dict) else None
        return DeadLetter(
            record,
            failure,
            payload.get("shop_id"),
            payload.get("scene"),
            ChannelName(channel) if channel in set(ChannelName) else None,
        )
    shop = payload.get("shopid")
    return DeadLetter(record, failure, shop if isinstance(shop, int) else None)


@dataclass(frozen=True)
class Selection:
    """Which dead letters to list or replay; every criterion given must match."""

    since: datetime | None = None
    until: datetime | None = None
    shop_id: int | None = None
    scene: str | None = None
    channel: ChannelName | None = None
    code: str | None = None
    """a provider code (43004, isv.BUSINESS_LIMIT_CONTROL) or a reason (invalid_json, retries_exhausted)"""
    stage: Stage | None = None
    delivery_id: str | None = None
    event_id: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        failure = letter.failure
        failed_at = failure.last_failed_at if failure else None
        since, until = self.since, self.until
        checks: list[tuple[object, Callable[[], bool]]] = [
            (since, lambda: failed_at is not None and since is not None and failed_at >= since),
            (until, lambda: failed_at is not None and until is not None and failed_at <= until),
            (self.shop_id, lambda: letter.shop_id == self.shop_id),
            (self.scene, lambda: letter.scene == self.scene),
            (self.channel, lambda: letter.channel == self.channel),
            (self.code, lambda: failure is not None and self.code in (failure.provider_code, failure.reason)),
            (self.stage, lambda: failure is not None and failure.stage == self.stage),
            (self.delivery_id, lambda: failure is not None and failure.delivery_id == self.delivery_id),
            (self.event_id, lambda: failure is not None and failure.event_id == self.event_id),
        ]
        return all(check() for wanted, check in checks if wanted is not None)


def read_dead_letters(bootstrap_servers: str, topics: Topics, selection: Selection) -> list[DeadLetter]:
    """Every retained record of the dead-letter topic (as of now) that the selection matches."""
    letters = [describe(record) for record in read_all(bootstrap_servers, topics.dead_letter, timeout=60)]
    return [letter for letter in letters if selection.matches(letter)]


def replay_topic(letter: DeadLetter, topics: Topics) -> str | None:
    """Where a dead letter goes back to: its channel's send topic, or the topic the event came
    from. None when it cannot be replayed: no readable history, or only a reference to a record
    too large to copy (``too_large``: the original is still at its origin, for a person to see)."""
    failure = letter.failure
    if failure is None or failure.reason == TOO_LARGE:
        return None
    if failure.stage is Stage.SEND:
        return topics.send_topic(letter.channel) if letter.channel else None
    return failure.origin.topic


@dataclass
class ReplaySummary:
    replayed: Counter[str] = field(default_factory=Counter)
    """target topic -> records written"""
    unreplayable: list[str] = field(default_factory=list)
    """coordinates of dead letters without a readable history or target"""

    @property
    def total(self) -> int:
        return sum(self.replayed.values())


def replay(
    bootstrap_servers: str,
    topics: Topics,
    letters: Iterable[DeadLetter],
    *,
    rate_per_second: float,
    dry_run: bool,
    on_each: Callable[[DeadLetter], None] = lambda _: None,
) -> ReplaySummary:
    summary = ReplaySummary()
    producer = None if dry_run else idempotent_producer(bootstrap_servers)
    interval = 1.0 / rate_per_second
    for letter in letters:
        target = replay_topic(letter, topics)
        if target is None or letter.failure is None:
            summary.unreplayable.append(letter.coordinates)
        else:
            if producer is not None:
                headers: list[tuple[str, str | bytes | None]] = [
                    (name, value) for name, value in letter.failure.replayed(datetime.now(UTC)).headers()
                ]
                producer.produce(
                    target,
                    value=letter.record.value,
                    key=letter.record.key,
                    headers=headers,
                    partition=partition_argument(letter.failure.partition_in(target)),
                )
                producer.poll(0)
                time.sleep(interval)
            summary.replayed[target] += 1
        on_each(letter)
    if producer is not None and producer.flush(30):
        raise RuntimeError("some replayed records were not acknowledged by Kafka; run the replay again")
    return summary
