"""A lane: one consumer-group member and the loop every lane of the worker shares.

The loop takes records (at least one, waiting up to ``wait_seconds``, then whatever else is
already fetched, up to what the lane has room for) and hands them to the lane, which hands what
each record led to to the worker's :class:`~streams.runtime.kafka.transactions.Transactions` and marks
the record done. Offsets are committed only in those transactions, up to each partition's first
unfinished record, together with what the records before it led to.

Rebalances (cooperative: only the partitions that move are touched):
- assigned: the lane restores the partitions' state before their first record is handled;
- revoked: the lane finishes the partitions' records in flight and waits for their commit, then
  drops their state;
- lost (the group gave them away, e.g. after a long outage): state dropped at once.

A partition is *stalled* when its oldest unfinished record is older than ``stall_seconds``, or
when it has records waiting (lag) and has not moved (no record read or finished) for that long:
a consumer that holds partitions and stopped taking records. Shown on ``/readyz`` and in
``mall_notify_partitions_stalled``. The lag of each owned partition (its end, asked of the
broker every few seconds apart from the consumer, minus the position before which everything is
finished) is in ``mall_notify_consumer_lag``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message, TopicPartition
from confluent_kafka.aio import AIOConsumer

from streams.logs import Repeats, fields, get_logger
from streams.runtime.kafka.clients import group_consumer_config
from streams.runtime.kafka.records import ConsumedRecord, Write, consumed
from streams.runtime.kafka.topic_reader import METADATA_TIMEOUT_SECONDS
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.state.partition import Entry
from streams.runtime.state.recovery import restore
from streams.runtime.state.store import Store

log = get_logger("lane")
REPEATS = Repeats(log, interval_seconds=30.0)
POSITIONS_INTERVAL_SECONDS = 1.0
Partition = tuple[str, int]


@dataclass(frozen=True)
class PartitionEnd:
    """Where an owned partition ends, as the broker said a moment ago (:mod:`~streams.runtime.kafka.lag`)."""

    end: int
    """the last stable offset (what a read_committed consumer can read up to)"""
    start: int
    """the oldest offset retained: where a partition with no committed offset starts"""


@dataclass(frozen=True)
class LaneConfig:
    bootstrap_servers: str
    group_id: str
    topics: list[str]
    wait_seconds: float = 0.2
    """how long a take waits for a first record"""
    stall_seconds: float = 60.0
    drain_seconds: float = 15.0
    """how long a revoke or a shutdown waits for records in flight"""
    session_timeout_seconds: float = 30.0
    """how long the group waits for a silent member before it gives its partitions to others"""
    instance_id: str | None = None
    """the worker's identity, kept across its restarts: a static member of the group (KIP-345),
    so a worker that comes back (after a crash too) gets its partitions at once, without waiting
    for the group to give up on its former self"""


class Offsets:
    """The records of each partition read and not finished yet, oldest first, with when they were read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._open: dict[Partition, dict[int, float]] = {}
        self._next: dict[Partition, int] = {}
        self._stored: dict[Partition, int] = {}
        self._moved: dict[Partition, float] = {}
        """when a record of the partition was last read or finished (or it was assigned)"""
        self._fetched: dict[Partition, int] = {}
        """the consumer's position, as last asked: past transaction markers, which are never read"""
        self._clock = clock

    def assigned(self, partition: Partition, committed: int | None, at: float) -> None:
        """A partition given to the lane; ``committed``: the group's position in it, if any."""
        self._moved[partition] = at
        if committed is not None:
            self._stored[partition] = committed

    def read(self, partition: Partition, offset: int, at: float) -> None:
        self._open.setdefault(partition, {})[offset] = at
        self._next[partition] = offset + 1
        self._moved[partition] = at

    def done(self, partition: Partition, offset: int) -> None:
        open_records = self._open.get(partition)
        if open_records is not None:
            open_records.pop(offset, None)
            self._moved[partition] = self._clock()

    def position(self, partition: Partition) -> int | None:
        """The offset before which every record is finished: the first unfinished record, else
        the next to read, else the group's committed position; None when nothing is known."""
        open_records = self._open.get(partition)
        if open_records:
            return next(iter(open_records))
        finished = self._next.get(partition, self._stored.get(partition))
        fetched = self._fetched.get(partition)
        if fetched is None or (finished is not None and finished > fetched):
            return finished
        return fetched

    def fetched(self, partition: Partition, position: int) -> None:
        """Where the consumer stands in a partition: a record read after a transaction's commit
        marker leaves the marker's offset behind it, and nothing of it is left to finish."""
        self._fetched[partition] = position

    def idle_since(self, partition: Partition) -> float | None:
        return self._moved.get(partition)

    def rewind(self, partition: Partition, offset: int) -> None:
        """The records from ``offset`` on will be read again (the lane seeked back to it)."""
        open_records = self._open.get(partition, {})
        for later in [number for number in open_records if number >= offset]:
            del open_records[later]
        self._next[partition] = offset

    def in_flight(self) -> int:
        return sum(map(len, self._open.values()))

    def committable(self) -> list[TopicPartition]:
        """Per partition, the offset before which every record is finished, where it moved on
        since the last commit."""
        moved = []
        for partition, next_offset in self._next.items():
            open_records = self._open.get(partition)
            offset = next(iter(open_records)) if open_records else next_offset
            if self._stored.get(partition) != offset:
                moved.append(TopicPartition(partition[0], partition[1], offset))
        return moved

    def committed(self, offsets: list[TopicPartition]) -> None:
        for offset in offsets:
            partition = (offset.topic, offset.partition)
            if partition in self._next:
                self._stored[partition] = offset.offset

    def stalled(self, now: float, after_seconds: float) -> list[Partition]:
        return [
            partition
            for partition, open_records in self._open.items()
            if open_records and now - next(iter(open_records.values())) > after_seconds
        ]

    def forget(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self._open.pop(partition, None)
            self._next.pop(partition, None)
            self._stored.pop(partition, None)
            self._moved.pop(partition, None)
            self._fetched.pop(partition, None)


@dataclass
class LaneStatus:
    joined: bool = False
    """the group has given this member its (possibly empty) share at least once"""
    assigned: set[Partition] = field(default_factory=set)
    restoring: set[Partition] = field(default_factory=set)


class Lane:
    """Subclasses say how many records they have room for, what to do with them, and what a
    rebalance means for their state."""

    def __init__(self, name: str, config: LaneConfig, transactions: Transactions) -> None:
        self.name = name
        self.config = config
        self.transactions = transactions
        self.offsets = Offsets()
        self.status = LaneStatus()
        self.ends: dict[Partition, PartitionEnd] = {}
        """the owned partitions' ends, as last asked of the broker"""
        self.consumer: AIOConsumer | None = None
        self._metadata: object | None = None
        self._metadata_stale = False
        self._positions_asked = 0.0
        transactions.register(self)

    # -- what a lane does -------------------------------------------------------------------
    async def room(self, stopping: asyncio.Event) -> int:
        """How many records to take now (waits while there is no room; 0 when stopping)."""
        raise NotImplementedError

    async def handle(self, records: list[ConsumedRecord]) -> None:
        """Take the records on; :meth:`finish` each with what it led to."""
        raise NotImplementedError

    def stores(self) -> list[Store]:
        """The state the lane keeps for the partitions it owns."""
        return []

    async def assigned(self, partitions: list[Partition]) -> None:
        """Restore the partitions' state (before their first record is handled)."""
        for store in self.stores():
            await restore(store, self.config.bootstrap_servers, [p for p in partitions if store.covers(p[0])])

    async def revoking(self, partitions: list[Partition]) -> None:
        """Finish the partitions' records in flight."""

    def released(self, partitions: list[Partition]) -> None:
        """Close the partitions' state (its files stay: a later owner here reads only the tail)."""
        for store in self.stores():
            store.close(partitions)

    def expired(self, store: Store, dropped: list[tuple[Partition, bytes, Entry]]) -> None:
        """Entries of ``store`` past their TTL were dropped."""

    async def drain(self) -> None:
        """Finish every record in flight (shutdown)."""

    def finish(self, record: ConsumedRecord, writes: list[Write]) -> None:
        """The record is done: what it led to goes into the next transaction, with its offset."""
        self.transactions.hand(self, record, writes)
        self.offsets.done((record.topic, record.partition), record.offset)

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        """What a record ends as when what it led to cannot be written (its dead letter)."""
        raise NotImplementedError

    # -- what the transactions need ------------------------------------------------------------
    def committable(self) -> list[TopicPartition]:
        return self.offsets.committable()

    def committed(self, offsets: list[TopicPartition]) -> None:
        self.offsets.committed(offsets)

    def group_metadata(self) -> object | None:
        return self._metadata

    def metadata_is_stale(self) -> None:
        self._metadata_stale = True

    def owns(self, partition: Partition) -> bool:
        return partition in self.status.assigned or partition in self.status.restoring

    # -- the loop ----------------------------------------------------------------------------
    def wait_seconds(self) -> float:
        """How long the next take waits for a first record."""
        return self.config.wait_seconds

    def stalled(self, now: float | None = None) -> list[Partition]:
        """Partitions with a record unfinished too long, or with lag that have not moved for as long."""
        now = now or time.monotonic()
        after = self.config.stall_seconds
        stuck = set(self.offsets.stalled(now, after))
        for partition, waiting in self.lag().items():
            idle_since = self.offsets.idle_since(partition)
            if waiting > 0 and idle_since is not None and now - idle_since > after:
                stuck.add(partition)
        return sorted(stuck)

    def lag(self) -> dict[Partition, int]:
        """Per owned partition whose end is known: records not finished yet."""
        lags = {}
        for partition in self.status.assigned:
            known = self.ends.get(partition)
            if known is None:
                continue
            position = self.offsets.position(partition)
            lags[partition] = max(known.end - (known.start if position is None else position), 0)
        return lags

    async def run(self, stopping: asyncio.Event) -> None:
        session_ms = int(self.config.session_timeout_seconds * 1000)
        static: dict[str, Any] = (
            {"group_instance_id": self.config.instance_id} if self.config.instance_id else {}
        )
        consumer = AIOConsumer(
            group_consumer_config(
                self.config.bootstrap_servers,
                self.config.group_id,
                session_timeout_ms=session_ms,
                heartbeat_interval_ms=max(100, session_ms // 10),
                **static,
            ),
            max_workers=2,
        )
        self.consumer = consumer
        await consumer.subscribe(
            self.config.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("lane started", extra=fields(lane=self.name, topics=self.config.topics))
        for store in self.stores():
            self.transactions.keep_state(store)
        try:
            while not stopping.is_set():
                for store in self.stores():
                    self.expired(store, store.sweep())
                if self._metadata_stale:
                    self._metadata_stale = False
                    self._metadata = await consumer.consumer_group_metadata()
                limit = await self.room(stopping)
                if limit:
                    records = self._read(await self._take(consumer, limit))
                    if records:
                        await self.handle(records)
                    else:
                        await self._ask_positions(consumer)
        finally:
            await self.drain()
            await self._commit_before("stopping")
            await consumer.close()
            for store in self.stores():
                store.close_all()
            self.status = LaneStatus()
            self._metadata = None
            log.info("lane stopped", extra=fields(lane=self.name))

    async def _take(self, consumer: AIOConsumer, limit: int) -> list[Message]:
        """What is fetched already, up to ``limit``; when nothing is, the first record to come (within
        the wait) and what came with it. One call to the consumer's thread under load."""
        ready: list[Message] = await consumer.consume(limit, 0)
        if ready:
            return ready
        first: list[Message] = await consumer.consume(1, self.wait_seconds())
        if not first or limit == 1:
            return first
        rest: list[Message] = await consumer.consume(limit - 1, 0)
        return first + rest

    async def _ask_positions(self, consumer: AIOConsumer) -> None:
        """When idle, now and then: the consumer's positions (a local answer), so a partition whose
        last record was written in a transaction shows no lag for the commit marker after it."""
        now = time.monotonic()
        if now - self._positions_asked < POSITIONS_INTERVAL_SECONDS or not self.status.assigned:
            return
        self._positions_asked = now
        partitions = [TopicPartition(topic, number) for topic, number in self.status.assigned]
        for position in await consumer.position(partitions):
            if position.offset >= 0:
                self.offsets.fetched((position.topic, position.partition), position.offset)

    def _read(self, messages: list[Message]) -> list[ConsumedRecord]:
        now = time.monotonic()
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                REPEATS.warning(f"{self.name}: consumer error {error.name()}", detail=error.str())
                continue
            record = consumed(message)
            self.offsets.read((record.topic, record.partition), record.offset, now)
            records.append(record)
        return records

    async def _commit_before(self, what: str) -> None:
        """Wait (for the drain time at most) for a commit of what is done."""
        if not self.offsets.committable():
            return
        try:
            await asyncio.wait_for(self.transactions.commit_now(), self.config.drain_seconds)
        except TimeoutError:
            log.warning(
                f"not committed before {what}: the next owner reads the last records again",
                extra=fields(lane=self.name),
            )

    async def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._metadata = await consumer.consumer_group_metadata()
        owned = [(p.topic, p.partition) for p in partitions]
        now = time.monotonic()
        committed = (
            await consumer.committed(partitions, timeout=METADATA_TIMEOUT_SECONDS) if partitions else []
        )
        for position in committed:
            offset = position.offset if position.offset >= 0 else None
            self.offsets.assigned((position.topic, position.partition), offset, now)
        self.status.restoring.update(owned)
        try:
            await self.assigned(owned)
        finally:
            self.status.restoring.difference_update(owned)
        self.status.assigned.update(owned)
        self.status.joined = True
        if owned:
            log.info("partitions assigned", extra=fields(lane=self.name, partitions=_names(owned)))

    async def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._metadata = await consumer.consumer_group_metadata()
        leaving = [(p.topic, p.partition) for p in partitions]
        await self.revoking(leaving)
        await self._commit_before("the revoke")
        self._release(leaving)
        if leaving:
            log.info("partitions revoked", extra=fields(lane=self.name, partitions=_names(leaving)))

    async def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        lost = [(p.topic, p.partition) for p in partitions]
        self._release(lost)
        self.transactions.lost(self, lost)
        log.warning("partitions lost", extra=fields(lane=self.name, partitions=_names(lost)))

    def _release(self, partitions: list[Partition]) -> None:
        self.offsets.forget(partitions)
        self.status.assigned.difference_update(partitions)
        self.released(partitions)


def _names(partitions: Iterable[Partition]) -> list[str]:
    return sorted(f"{topic}[{number}]" for topic, number in partitions)
