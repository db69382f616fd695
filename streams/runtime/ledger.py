"""The ledger: final outcomes, as state partitioned with the records they are about.

A record read on partition *p* of a topic gets its ledger entry (key: delivery id or event id,
value: status and time) on partition *p* of that topic's changelog, a compacted topic with as
many partitions. So the worker that owns partition *p* of a send topic holds, and only holds, the
entries of the deliveries on it: assigned a partition, it reads that changelog partition before
the partition's first record is handled; when the partition is revoked, it drops them. Memory
and start time follow the partitions a worker owns, never the history of the outcomes topic.

This is Kafka Streams' changelog (and faust's Table) made for our one need, a set of final
outcomes with a TTL; why not faust's Table: see the README ("Partitioned state").

Entries are read back only for the TTL (the changelog's retention should be as long): a delivery
read again after that is treated as new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from streams.core.outcomes import Status
from streams.runtime.records import Write

Clock = Callable[[], float]
PartitionId = tuple[str, int]
"""(topic, partition) of the records the entries are about"""


class NotOwned(Exception):
    """The ledger of a partition this lane does not own (any more) was asked for."""


class LedgerPartition:
    """The final outcomes of the records of one partition, oldest first, for a TTL."""

    def __init__(self, ttl_seconds: float, clock: Clock) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._final: dict[str, tuple[Status, float, str | None]] = {}
        """key -> its final status, when, and the event record it came from (``topic[p]@offset``)"""

    def __len__(self) -> int:
        return len(self._final)

    def final(self, key: str) -> Status | None:
        self._forget_expired()
        entry = self._final.get(key)
        return entry[0] if entry else None

    def origin(self, key: str) -> str | None:
        entry = self._final.get(key)
        return entry[2] if entry else None

    def remember(self, key: str, status: Status, at: float, origin: str | None = None) -> None:
        self._final.pop(key, None)  # re-inserted at the end: the dict stays ordered by time
        if at > self._clock() - self._ttl:
            self._final[key] = (status, at, origin)

    def _forget_expired(self) -> None:
        horizon = self._clock() - self._ttl
        while self._final:
            key, (_, at, _origin) = next(iter(self._final.items()))
            if at > horizon:
                return
            del self._final[key]


def entry_value(status: Status, at: float, origin: str | None = None) -> bytes:
    entry: dict[str, Any] = {"status": status.value, "at": at}
    if origin is not None:
        entry["origin"] = origin
    return orjson.dumps(entry)


def parse_entry(value: bytes | None) -> tuple[Status, float, str | None] | None:
    try:
        document: Any = orjson.loads(value or b"")
        origin = document.get("origin")
        return Status(document["status"]), float(document["at"]), origin if isinstance(origin, str) else None
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError):
        return None


ChangelogRecord = tuple[int, bytes | None, bytes | None]
"""(partition, key, value) of a changelog record"""
ReadChangelog = Callable[[str, list[int]], Iterable[ChangelogRecord]]
"""Reads the given partitions of a changelog topic from the oldest record to the current end."""


class Ledger:
    """The ledger partitions of the partitions a lane owns, for the topics it consumes."""

    def __init__(self, changelogs: Mapping[str, str], ttl_seconds: float, clock: Clock = time.time) -> None:
        self._changelogs = dict(changelogs)
        """consumed topic -> its changelog topic"""
        self._ttl = ttl_seconds
        self._clock = clock
        self._partitions: dict[PartitionId, LedgerPartition] = {}

    def __len__(self) -> int:
        return sum(map(len, self._partitions.values()))

    def covers(self, topic: str) -> bool:
        """Whether records of ``topic`` have a ledger here."""
        return topic in self._changelogs

    def final(self, source: PartitionId, key: str) -> Status | None:
        """The final status of ``key`` on its partition; NotOwned when this lane does not own it."""
        state = self._partitions.get(source)
        if state is None:
            raise NotOwned(source)
        return state.final(key)

    def origin(self, source: PartitionId, key: str) -> str | None:
        """The event record a final key came from, when its entry says (NotOwned as ``final``)."""
        state = self._partitions.get(source)
        if state is None:
            raise NotOwned(source)
        return state.origin(key)

    def entry(
        self, source: PartitionId, key: str, status: Status, at: float, origin: str | None = None
    ) -> Write:
        """Know a final outcome now; the changelog record that keeps it."""
        state = self._partitions.get(source)
        if state is not None:  # else the partition was lost meanwhile: its new owner reads the changelog
            state.remember(key, status, at, origin)
        topic, partition = source
        value = entry_value(status, at, origin)
        return Write(self._changelogs[topic], key.encode(), value, partition=partition)

    def read(
        self, sources: list[PartitionId], read: ReadChangelog
    ) -> tuple[dict[PartitionId, LedgerPartition], int]:
        """The partitions' state rebuilt from their changelogs, and how many records that took
        (blocking I/O: run it in a thread, then :meth:`install` the result)."""
        restored = {source: LedgerPartition(self._ttl, self._clock) for source in sources}
        count = 0
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sources:
            by_topic.setdefault(topic, []).append(partition)
        for topic, partitions in by_topic.items():
            for partition, key, value in read(self._changelogs[topic], partitions):
                count += 1
                entry = parse_entry(value)
                if key and entry is not None:
                    restored[(topic, partition)].remember(key.decode(), *entry)
        return restored, count

    def install(self, restored: Mapping[PartitionId, LedgerPartition]) -> None:
        self._partitions.update(restored)

    def drop(self, sources: Iterable[PartitionId]) -> None:
        for source in sources:
            self._partitions.pop(source, None)
