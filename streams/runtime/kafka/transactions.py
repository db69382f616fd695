"""The worker's one Kafka producer, transactional.

Every lane hands it what a consumed record led to (dispatches, outcomes, dead letters, retry
records, ledger entries) and marks the record done. About every ``interval`` seconds the
committer sends each lane's consumed offsets into the open transaction (one transaction may hold
the offsets of several consumer groups) and commits it. So an outcome, its ledger entry and the
offset of the record it is about are written together or not at all: a crash, even SIGKILL,
leaves none without the others, and nothing is written twice. This is Kafka Streams' exactly-once
(v2) for our lanes. Readers read committed data only (librdkafka's default ``read_committed``).

A failed transaction is aborted and its writes go again into the next one:
- ``outage`` (the cluster is unreachable or busy): as they are, with backoff, until it is back;
- ``record`` (one write cannot be written as it is: too large for the broker, say): that
  record's writes are replaced by its dead letter in a form that fits (the lane's ``unwritable``);
- ``refused`` (authorization, policy...): a few times more, then the same.
What a provider was already asked is not undone by an abort: a crash or lost partition between a
send and the commit of its outcome sends that delivery again (WeChat OA drops it by
``client_msg_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from streams.logs import Repeats, fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.clients import WriteProblem, produce, producer_config, write_problem
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.state.store import Store

log = get_logger("transactions")
REPEATS = Repeats(log, interval_seconds=30.0)
POLL_SECONDS = 0.1
TRANSACTION_TIMEOUT_MS = 10_000
"""A crashed worker's open transaction blocks readers of its partitions at most this long."""
CALL_TIMEOUT_SECONDS = 6.0
"""A transactional call (offsets, commit, abort) that takes longer fails, well before the
coordinator would abort the transaction for its age and fence the producer."""
INIT_TIMEOUT_SECONDS = 30.0
SLOW_COMMIT_SECONDS = 1.0
MAX_REFUSALS = 3
MAX_BACKLOG = 50_000
"""Writes waiting to be committed before lanes are made to wait."""
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
QUEUE_FULL_WAIT_SECONDS = 0.05


class Committing(Protocol):
    """What the committer needs of a lane."""

    name: str

    def committable(self) -> list[TopicPartition]:
        """The offsets to commit: per partition, up to its first unfinished record."""
        ...

    def committed(self, offsets: list[TopicPartition]) -> None: ...

    def group_metadata(self) -> object | None:
        """The lane's consumer group metadata, as of its last rebalance (None before it joined)."""
        ...

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]: ...

    def metadata_is_stale(self) -> None:
        """The group refused the metadata (a new generation): the lane reads it again."""
        ...

    def owns(self, partition: tuple[str, int]) -> bool:
        """Whether the lane owns the partition now (a record of one it lost or gave away is not its own)."""
        ...


@dataclass(eq=False)
class Handed:
    """What one consumed record led to."""

    lane: Committing
    record: ConsumedRecord
    writes: list[Write]
    at: float = field(default_factory=time.monotonic)
    refusals: int = 0
    replaced: bool = False
    error: KafkaError | None = None
    """the first write error of the current attempt"""
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """per changelog partition written, the offset of the last record the broker acknowledged"""
    attempt: int = 0
    """how often the writes were produced (each abort produces them again)"""


class Transactions:
    def __init__(
        self, bootstrap_servers: str, name: str, interval: float = 0.1, identity: str | None = None
    ) -> None:
        """``identity``: the worker's own, kept across its restarts (its state directory's): the
        producer of a restarted worker then takes over the transactional id of the one that
        crashed, and its open transaction is aborted at once instead of after the timeout."""
        self._bootstrap = bootstrap_servers
        suffix = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._transactional_id = f"{name}-{suffix}"
        self._interval = interval
        self._lanes: list[Committing] = []
        self._waiting: list[Handed] = []
        """handed while no transaction was open to take them"""
        self._open: list[Handed] = []
        """produced into the open transaction"""
        self._backlog = 0
        """writes handed and not committed yet"""
        self._producer: Producer | None = None
        self._stores: dict[str, Store] = {}
        """changelog topic -> the store whose writes it carries (written to disk once committed)"""
        self._abort_next = False
        """writes of a lost partition are in the open transaction: abort it, produce the rest again"""
        self._began_at = time.monotonic()
        self._open_transaction = False
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._cycles_started = 0
        self._cycles_done = 0
        self._done = asyncio.Condition()
        self._polling = threading.Event()

    # -- what lanes call -----------------------------------------------------------------------
    def register(self, lane: Committing) -> None:
        self._lanes.append(lane)

    def keep_state(self, store: Store) -> None:
        """Write the store's changelog records to its disk once their transaction commits."""
        for changelog in store.changelogs.values():
            self._stores[changelog] = store

    def hand(self, lane: Committing, record: ConsumedRecord, writes: list[Write]) -> None:
        """Take what ``record`` led to; the lane may mark the record done right after. What a record
        of a partition the lane no longer owns led to is dropped: the partition's new owner reads
        the record again."""
        if not lane.owns((record.topic, record.partition)):
            metrics.WRITES_DROPPED.labels(lane.name).inc(len(writes))
            return
        handed = Handed(lane, record, writes)
        self._backlog += len(writes)
        if self._open_transaction:
            self._produce(handed)
        else:
            self._waiting.append(handed)

    def lost(self, lane: Committing, partitions: list[tuple[str, int]]) -> None:
        """The group gave the partitions away without a revoke: what their records led to and is not
        committed yet is dropped, so it is never written twice (their new owner reads them again)."""
        gone = set(partitions)

        def kept(handed: Handed) -> bool:
            return handed.lane is not lane or (handed.record.topic, handed.record.partition) not in gone

        waiting = [handed for handed in self._waiting if kept(handed)]
        still_open = [handed for handed in self._open if kept(handed)]
        dropped = len(self._waiting) + len(self._open) - len(waiting) - len(still_open)
        if len(still_open) < len(self._open):
            self._abort_next = True  # already produced: only an abort takes them back
        self._waiting, self._open = waiting, still_open
        self._backlog = sum(len(handed.writes) for handed in (*self._waiting, *self._open))
        if dropped:
            log.warning("writes of lost partitions dropped", extra=fields(lane=lane.name, records=dropped))

    async def room(self) -> None:
        """Wait while too much is waiting to be committed (an outage): lanes then stop reading."""
        while self.backlog() > MAX_BACKLOG:
            self._wake.set()
            await asyncio.sleep(self._interval)

    def backlog(self) -> int:
        return self._backlog

    async def commit_now(self) -> None:
        """Return once a commit that started after this call has succeeded."""
        async with self._done:
            target = self._cycles_started + 1
            self._wake.set()
            await self._done.wait_for(lambda: self._cycles_done >= target)

    def uncommitted_seconds(self, now: float | None = None) -> float:
        """How long the oldest write not committed yet has waited (0 when there is none). Each list
        is in the order records were handed (what failed goes back to the front of the waiting)."""
        oldest = min((handed[0].at for handed in (self._open, self._waiting) if handed), default=None)
        return 0.0 if oldest is None else (now or time.monotonic()) - oldest

    def ask_about(self, topic: str, timeout: float) -> None:
        """Ask the cluster for one topic's metadata (blocking): KafkaException when it cannot answer."""
        if self._producer is None:
            raise KafkaException(KafkaError(KafkaError._STATE, "the producer is not started"))
        self._producer.list_topics(topic, timeout=timeout)

    # -- the committer ---------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        """Commit every interval until ``stopping``, then once more (lanes stop first)."""
        await self._start()
        self._polling.clear()
        poller = threading.Thread(target=self._poll, name="kafka-producer-poll", daemon=True)
        poller.start()
        backoff = FIRST_BACKOFF_SECONDS
        try:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
                self._wake.clear()
                if await self._cycle():
                    backoff = FIRST_BACKOFF_SECONDS
                else:  # try again after the backoff, not after the interval
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    self._wake.set()
            await self._cycle()
        finally:
            self._polling.set()
            await asyncio.to_thread(poller.join)
            await self._close()

    async def _start(self) -> None:
        config = producer_config(
            self._bootstrap,
            transactional_id=self._transactional_id,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            delivery_timeout_ms=TRANSACTION_TIMEOUT_MS,  # librdkafka: no longer than a transaction
            retry_backoff_ms=10,  # the next transaction's first call waits for the last one's markers
            delivery_report_only_error=False,  # the changelog records' offsets make the checkpoints
        )
        self._producer = Producer(config)
        await asyncio.to_thread(self._producer.init_transactions, INIT_TIMEOUT_SECONDS)
        self._begin()
        log.info("transactions started", extra=fields(transactional_id=self._transactional_id))

    def _poll(self) -> None:
        """Serve delivery reports. A fatal error surfaces here too; the next commit fails on it and
        starts over with a new producer, which this loop then polls."""
        while not self._polling.is_set():
            producer = self._producer
            if producer is None:
                time.sleep(POLL_SECONDS)
                continue
            try:
                producer.poll(POLL_SECONDS)
            except KafkaException as exc:
                REPEATS.warning("the producer failed", detail=str(exc))
                time.sleep(POLL_SECONDS)

    def _begin(self) -> None:
        assert self._producer is not None
        self._producer.begin_transaction()
        self._began_at = time.monotonic()
        self._open_transaction = True
        waiting, self._waiting = self._waiting, []
        for handed in waiting:
            self._produce(handed)

    def _produce(self, handed: Handed) -> None:
        assert self._producer is not None
        self._open.append(handed)
        handed.attempt += 1
        handed.offsets.clear()
        with self._lock:
            handed.error = None  # what a purged earlier attempt reported meanwhile
        delivered = partial(self._delivered, handed, handed.attempt)
        for write in handed.writes:
            try:
                produce(self._producer, write, delivered)
            except BufferError:  # the local queue is full: this attempt fails, the next waits
                self._failed(handed, KafkaError(KafkaError._QUEUE_FULL, "local queue full", retriable=True))
            except KafkaException as exc:
                self._failed(handed, exc.args[0])

    def _delivered(self, handed: Handed, attempt: int, error: KafkaError | None, message: Message) -> None:
        """Runs on the polling thread (or the committing one). A report of an earlier attempt (a
        write purged by an abort, reported after it was produced again) says nothing of this one."""
        if attempt != handed.attempt:
            return
        if error is not None:
            self._failed(handed, error)
            return
        topic = message.topic()
        if topic is not None and topic in self._stores:
            where = (topic, message.partition() or 0)
            handed.offsets[where] = max(handed.offsets.get(where, -1), message.offset() or 0)

    def _failed(self, handed: Handed, error: KafkaError) -> None:
        with self._lock:
            if handed.error is None:
                handed.error = error

    async def _cycle(self) -> bool:
        """Commit the open transaction with every lane's offsets; True when it was committed."""
        assert self._producer is not None
        self._cycles_started += 1
        offsets = [(lane, lane.committable()) for lane in self._lanes]
        offsets = [(lane, partitions) for lane, partitions in offsets if partitions]
        if not self._open and not offsets:  # nothing to commit
            await self._finished_cycle()
            return True
        self._open_transaction = False  # what is handed from now on waits for the next transaction
        committing = time.monotonic()
        try:
            if self._abort_next or any(handed.error is not None for handed in self._open):
                raise KafkaException(KafkaError(KafkaError._FAIL, "a write failed", txn_requires_abort=True))
            for lane, partitions in offsets:
                await self._send_offsets(lane, partitions)
            await asyncio.to_thread(self._producer.commit_transaction, CALL_TIMEOUT_SECONDS)
        except KafkaException as exc:
            await self._recover(exc.args[0])
            return False
        committed, self._open = self._open, []
        self._backlog -= sum(len(handed.writes) for handed in committed)
        for lane, partitions in offsets:
            lane.committed(partitions)
        self._write_state(committed)
        metrics.TRANSACTIONS.labels("committed").inc()
        self._slow(committing, committed)
        self._begin()
        await self._finished_cycle()
        if committed:
            log.debug("committed", extra=fields(records=len(committed)))
        return True

    def _write_state(self, committed: list[Handed]) -> None:
        """The committed changelog records, to their stores' disks, with the offsets they reach."""
        if not self._stores:
            return
        changes: dict[tuple[str, int], list[tuple[bytes, bytes | None]]] = {}
        offsets: dict[tuple[str, int], int] = {}
        for handed in committed:
            for write in handed.writes:
                if write.topic in self._stores and write.key is not None and write.partition is not None:
                    changes.setdefault((write.topic, write.partition), []).append((write.key, write.value))
            for where, offset in handed.offsets.items():
                offsets[where] = max(offsets.get(where, -1), offset)
        for (changelog, number), written in changes.items():
            self._stores[changelog].committed(changelog, number, written, offsets.get((changelog, number)))

    def _slow(self, committing: float, committed: list[Handed]) -> None:
        """A warning when a commit took long, or the transaction was open long: its age and size."""
        now = time.monotonic()
        age, took = now - self._began_at, now - committing
        if took > SLOW_COMMIT_SECONDS or age > TRANSACTION_TIMEOUT_MS / 2000:
            REPEATS.warning(
                "a slow transaction",
                age_seconds=round(age, 3),
                commit_seconds=round(took, 3),
                records=len(committed),
                writes=sum(len(handed.writes) for handed in committed),
            )

    async def _send_offsets(self, lane: Committing, partitions: list[TopicPartition]) -> None:
        assert self._producer is not None
        metadata = lane.group_metadata()
        if metadata is None:
            raise KafkaException(
                KafkaError(KafkaError._STATE, f"{lane.name} has not joined its group yet", retriable=True)
            )
        try:
            await asyncio.to_thread(
                self._producer.send_offsets_to_transaction, partitions, metadata, CALL_TIMEOUT_SECONDS
            )
        except KafkaException as exc:
            if exc.args[0].code() in _GENERATION_ERRORS:
                lane.metadata_is_stale()
            raise

    async def _finished_cycle(self) -> None:
        async with self._done:
            self._cycles_done = self._cycles_started
            self._done.notify_all()

    async def _recover(self, error: KafkaError) -> None:
        """Abort and hand everything in again; after a fatal error, or when the abort or the next
        transaction fails, start over with a new producer (same transactional id: it fences the old
        one)."""
        metrics.TRANSACTIONS.labels("aborted").inc()
        self._abort_next = False
        REPEATS.warning(
            "transaction failed, trying again",
            error=error.name(),
            detail=error.str(),
            age_seconds=round(time.monotonic() - self._began_at, 3),
        )
        again = [retried for handed in self._open for retried in self._again(handed)]
        self._open = []
        self._waiting = again + self._waiting
        self._backlog = sum(len(handed.writes) for handed in self._waiting)  # replacements may differ
        if error.fatal() or not await self._abort() or not self._began():
            await self._close()
            await self._start()

    async def _abort(self) -> bool:
        assert self._producer is not None
        try:
            await asyncio.to_thread(self._producer.abort_transaction, CALL_TIMEOUT_SECONDS)
        except KafkaException:
            return False
        return True

    def _began(self) -> bool:
        try:
            self._begin()
        except KafkaException:
            return False
        return True

    def _again(self, handed: Handed) -> list[Handed]:
        """The record's writes for the next attempt, replaced when they cannot be written."""
        error, handed.error = handed.error, None
        if error is None:
            return [handed]
        problem = WriteProblem.OUTAGE if handed.replaced else write_problem(error)
        metrics.WRITE_FAILURES.labels(handed.lane.name, problem.value).inc()
        REPEATS.warning(
            f"{handed.lane.name}: a write failed ({problem.value})", error=error.name(), detail=error.str()
        )
        if problem is WriteProblem.REFUSED and handed.refusals < MAX_REFUSALS:
            handed.refusals += 1
            return [handed]
        if problem is WriteProblem.OUTAGE:
            return [handed]
        detail = f"{error.name()}: {error.str()}"
        writes = handed.lane.unwritable(handed.record, detail)
        return [Handed(handed.lane, handed.record, writes, handed.at, replaced=True)]

    async def _close(self) -> None:
        """Drop the producer; what it had not committed is aborted (by it, or by the coordinator)."""
        producer, self._producer = self._producer, None
        self._open_transaction = False
        if producer is not None:
            with contextlib.suppress(KafkaException):  # a fenced or failed producer has nothing to keep
                await asyncio.to_thread(producer.abort_transaction, 5.0)
                await asyncio.to_thread(producer.flush, 5.0)


_GENERATION_ERRORS = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
    }
)
