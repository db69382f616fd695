"""The receipts lane: pairs each delivered message with the provider's receipt, in whichever order
they come, and writes the delivery's second outcome (``reached`` / ``not_reached``).

Its state is partitioned like ``notify.receipts``: per key (``<channel>:<message id>``) what came
first (the sent outcome, or an early receipt) until the other comes, then a ``done`` marker to
count duplicates, each kept for the TTL in the compacted changelog ``notify.ledger.notify.receipts``
and read back when a partition is assigned, like the ledger. A receipt whose delivery never came
within the TTL (not ours, or its sent record was lost) is counted as unmatched when it is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Literal

import orjson
from pydantic import ValidationError

from channels.base import ChannelName
from streams.core.outcomes import Outcome
from streams.core.receipts import ReceiptNote, ReceiptsRecord, parse_receipts_record, receipt_outcome
from streams.core.topics import Topics
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.lane import Lane, LaneConfig, Partition
from streams.runtime.ledger import Ledger, NotOwned
from streams.runtime.records import ConsumedRecord, Write
from streams.runtime.stage import Clock, PipelineStage, utc_now
from streams.runtime.topic_reader import read_to_end
from streams.runtime.transactions import Transactions

log = get_logger("receipts")
Kind = Literal["sent", "receipt", "done"]
READ_TIMEOUT_SECONDS = 300.0
OVERDUE_EVERY_SECONDS = 10.0


class PendingPartition:
    """Per key: what came first, or ``done``, with when (oldest first, dropped after the TTL)."""

    def __init__(
        self, ttl_seconds: float, clock: Callable[[], float], expired: Callable[[Kind, bytes], None]
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._expired = expired
        self.entries: dict[str, tuple[Kind, bytes, float]] = {}

    def get(self, key: str) -> tuple[Kind, bytes] | None:
        self._forget_expired()
        entry = self.entries.get(key)
        return (entry[0], entry[1]) if entry else None

    def put(self, key: str, kind: Kind, value: bytes, at: float) -> None:
        self.entries.pop(key, None)
        if at > self._clock() - self._ttl:
            self.entries[key] = (kind, value, at)

    def _forget_expired(self) -> None:
        horizon = self._clock() - self._ttl
        while self.entries:
            key, (kind, value, at) = next(iter(self.entries.items()))
            if at > horizon:
                return
            del self.entries[key]
            self._expired(kind, value)


def _entry(kind: Kind, value: bytes, at: float) -> bytes:
    return orjson.dumps({"kind": kind, "at": at, "value": value.decode()})


class ReceiptsStage(PipelineStage):
    def __init__(
        self,
        topics: Topics,
        ttl_seconds: float,
        clock: Clock = utc_now,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(topics, Ledger({}, ttl_seconds), clock)
        self.changelog = topics.ledger_topic(topics.receipts)
        self.ttl = ttl_seconds
        self.now = now
        """seconds since the epoch: entries are kept for ``ttl_seconds`` from it"""
        self.partitions: dict[Partition, PendingPartition] = {}

    def pending(self, source: Partition) -> PendingPartition:
        state = self.partitions.get(source)
        if state is None:
            raise NotOwned(source)
        return state

    def new_partition(self) -> PendingPartition:
        return PendingPartition(self.ttl, self.now, _count_expired)

    def handle(self, record: ConsumedRecord) -> list[Write]:
        source = (record.topic, record.partition)
        try:
            incoming = parse_receipts_record(record.value)
        except (ValidationError, ValueError) as exc:
            metrics.RECEIPTS.labels("unknown", "unreadable").inc()
            log.warning(
                "an unreadable receipts record",
                extra=fields(source=str(record.source), detail=str(exc)[:200]),
            )
            return []
        key = (record.key or b"").decode(errors="replace")
        state = self.pending(source)
        known = state.get(key)
        if known is not None and (known[0] == "done" or (known[0] == "receipt" and incoming.receipt)):
            metrics.RECEIPTS.labels(_channel(incoming), "duplicate").inc()
            return []
        if known is None:
            kind: Kind = "sent" if incoming.sent else "receipt"
            return [self._keep(source, key, kind, record.value or b"")]
        sent, receipt = _pair(incoming, parse_receipts_record(known[1]))
        if sent is None or receipt is None:  # a second sent record (a replayed delivery): keep the first
            return []
        outcome = receipt_outcome(sent, receipt)
        channel = receipt.channel.value
        metrics.RECEIPTS.labels(channel, outcome.status.value).inc()
        reached = "true" if receipt.reached else "false"
        metrics.RECEIPT_CODES.labels(
            channel, metrics.receipt_code_label(channel, receipt.code), reached
        ).inc()
        lag = (receipt.at - sent.at).total_seconds()
        metrics.RECEIPT_LAG_SECONDS.labels(receipt.channel.value).observe(max(lag, 0.0))
        return [self.outcome(outcome), self._keep(source, key, "done", b"")]

    def waiting(self, channel: ChannelName, older_than: float) -> list[tuple[str, bytes]]:
        """The delivered messages of a channel waiting for their receipt since before ``older_than``."""
        prefix = f"{channel.value}:"
        return [
            (key, value)
            for state in self.partitions.values()
            for key, (kind, value, at) in list(state.entries.items())
            if kind == "sent" and at < older_than and key.startswith(prefix)
        ]

    def overdue(self, older_than: float) -> Counter[str]:
        """Per channel, the delivered messages waiting for their receipt since before ``older_than``."""
        waiting: Counter[str] = Counter()
        for state in self.partitions.values():
            for key, (kind, _, at) in state.entries.items():
                if kind == "sent" and at < older_than:
                    waiting[key.partition(":")[0]] += 1
        return waiting

    def _keep(self, source: Partition, key: str, kind: Kind, value: bytes) -> Write:
        at = self.now()
        self.pending(source).put(key, kind, value, at)
        return Write(self.changelog, key.encode(), _entry(kind, value, at), partition=source[1])

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        log.error(
            "a receipt's writes cannot be written; dropped",
            extra=fields(source=str(record.source), detail=detail),
        )
        return []


def _channel(record: ReceiptsRecord) -> str:
    if record.receipt is not None:
        return record.receipt.channel.value
    return record.sent.channel.value if record.sent and record.sent.channel else "unknown"


def _pair(first: ReceiptsRecord, second: ReceiptsRecord) -> tuple[Outcome | None, ReceiptNote | None]:
    return first.sent or second.sent, first.receipt or second.receipt


def _count_expired(kind: Kind, value: bytes) -> None:
    if kind == "receipt":
        metrics.RECEIPTS.labels(_channel(parse_receipts_record(value)), "unmatched").inc()


class ReceiptsLane(Lane):
    stage: ReceiptsStage

    def __init__(
        self, config: LaneConfig, stage: ReceiptsStage, transactions: Transactions, overdue_seconds: float
    ) -> None:
        super().__init__("receipts", config, transactions)
        self.stage = stage
        self.overdue_seconds = overdue_seconds
        self._counted_at = 0.0

    async def room(self, stopping: asyncio.Event) -> int:
        await self.transactions.room()
        now = time.time()
        if now - self._counted_at > OVERDUE_EVERY_SECONDS:
            self._counted_at = now
            overdue = self.stage.overdue(now - self.overdue_seconds)
            for channel in ChannelName:
                metrics.RECEIPTS_OVERDUE.labels(channel.value).set(overdue[channel.value])
        return 0 if stopping.is_set() else 500

    async def handle(self, records: list[ConsumedRecord]) -> None:
        for record in records:
            self.transactions.hand(self, record, self.stage.handle(record))
            self.offsets.done((record.topic, record.partition), record.offset)

    async def assigned(self, partitions: list[Partition]) -> None:
        numbers = [number for _, number in partitions]
        stage = self.stage

        def read() -> list[tuple[int, bytes | None, bytes | None]]:
            return [
                (m.partition() or 0, m.key(), m.value())
                for m in read_to_end(
                    self.config.bootstrap_servers, stage.changelog, numbers, READ_TIMEOUT_SECONDS
                )
            ]

        records = await asyncio.to_thread(read) if partitions else []
        restored = {source: stage.new_partition() for source in partitions}
        topic = partitions[0][0] if partitions else ""  # the lane consumes one topic
        for number, key, value in records:
            if key is None:
                continue
            state = restored[(topic, number)]
            if value is None:
                state.entries.pop(key.decode(errors="replace"), None)
                continue
            entry = orjson.loads(value)
            state.put(
                key.decode(errors="replace"), entry["kind"], str(entry["value"]).encode(), float(entry["at"])
            )
        stage.partitions.update(restored)
        if partitions:
            log.info(
                "receipts state restored", extra=fields(partitions=len(partitions), records=len(records))
            )

    def released(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            self.stage.partitions.pop(partition, None)

    def state_size(self) -> int:
        return sum(len(state.entries) for state in self.stage.partitions.values())

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return self.stage.unwritable(record, detail)
