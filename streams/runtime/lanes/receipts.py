"""The receipts lane: pairs each delivered message with the provider's receipt, in whichever order
they come, and writes the delivery's second outcome (``reached`` / ``not_reached``).

Its state is a store partitioned like ``notify.receipts``: per key (``<channel>:<message id>``)
what came first (the sent outcome, or an early receipt) until the other comes, then a ``done``
marker to count duplicates, each kept for the TTL, with the changelog
``notify.ledger.notify.receipts``. A receipt whose delivery never came within the TTL (not ours,
or its sent record was lost) is counted as unmatched when it is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from pydantic import ValidationError

from channels.base import ChannelName
from streams.core.outcomes import Outcome
from streams.core.receipts import ReceiptNote, ReceiptsRecord, parse_receipts_record, receipt_outcome
from streams.core.topics import Topics
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import Lane, LaneConfig, Partition
from streams.runtime.lanes.stage import Clock, PipelineStage, utc_now
from streams.runtime.state.partition import Entry
from streams.runtime.state.store import Disk, Store

log = get_logger("receipts")
SENT, RECEIPT, DONE = 1, 2, 3
"""the tags of the store's entries: what came first, or that the pair is done"""
OVERDUE_EVERY_SECONDS = 10.0
WAITING_LIMIT = 10_000
"""overdue messages looked at per partition and pass, at most"""


class ReceiptsStage(PipelineStage):
    def __init__(
        self,
        topics: Topics,
        disk: Disk,
        ttl_seconds: float,
        clock: Clock = utc_now,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(topics, None, clock)
        changelogs = {topics.receipts: topics.ledger_topic(topics.receipts)}
        self.store = Store("receipts", changelogs, disk, ttl_seconds, clock=now, tags=(SENT, RECEIPT, DONE))
        self.now = now
        """seconds since the epoch: entries are kept for ``ttl_seconds`` from it"""

    def handle(self, record: ConsumedRecord) -> list[Write]:
        try:
            incoming = parse_receipts_record(record.value)
        except (ValidationError, ValueError) as exc:
            metrics.RECEIPTS.labels("unknown", "unreadable").inc()
            log.warning(
                "an unreadable receipts record",
                extra=fields(source=str(record.source), detail=str(exc)[:200]),
            )
            return []
        state = self.store.partition((record.topic, record.partition))
        key = record.key or b""
        known = state.get(key)
        if known is not None and (known.tag == DONE or (known.tag == RECEIPT and incoming.receipt)):
            metrics.RECEIPTS.labels(_channel(incoming), "duplicate").inc()
            return []
        if known is None:
            tag = SENT if incoming.sent else RECEIPT
            return [state.put(key, record.value or b"", self.now(), tag)]
        sent, receipt = _pair(incoming, parse_receipts_record(known.payload))
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
        return [self.outcome(outcome), state.put(key, b"", self.now(), DONE)]

    def waiting(self, channel: ChannelName, older_than: float) -> list[tuple[str, bytes]]:
        """The delivered messages of a channel waiting for their receipt since before ``older_than``."""
        prefix = f"{channel.value}:".encode()
        return [
            (key.decode(errors="replace"), entry.payload)
            for key, entry in self._sent_before(older_than)
            if key.startswith(prefix)
        ]

    def overdue(self, older_than: float) -> Counter[str]:
        """Per channel, the delivered messages waiting for their receipt since before ``older_than``."""
        return Counter(
            key.partition(b":")[0].decode(errors="replace") for key, _ in self._sent_before(older_than)
        )

    def _sent_before(self, older_than: float) -> list[tuple[bytes, Entry]]:
        return [
            found for _, state in self.store.owned() for found in state.older(SENT, older_than, WAITING_LIMIT)
        ]

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


def _count_unmatched(entry: Entry) -> None:
    if entry.tag == RECEIPT:
        try:
            channel = _channel(parse_receipts_record(entry.payload))
        except (ValidationError, ValueError):
            channel = "unknown"
        metrics.RECEIPTS.labels(channel, "unmatched").inc()


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
            self.finish(record, self.stage.handle(record))

    def stores(self) -> list[Store]:
        return [self.stage.store]

    def expired(self, store: Store, dropped: list[tuple[Partition, bytes, Entry]]) -> None:
        for _, _, entry in dropped:
            _count_unmatched(entry)

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return self.stage.unwritable(record, detail)
