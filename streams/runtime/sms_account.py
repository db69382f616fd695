"""SMS balances at send time: reserve a message's segments before Aliyun is asked, charge them
with the delivered outcome (same transaction), or end the delivery ``sms_quota_exhausted``.

Every SMS sender lane of a worker shares one :class:`~streams.core.sms_quota.AccountBook`,
followed from the account topic (other workers' charges, purchases). What a lane charges for a
partition it owns is its own to write: when the partition is assigned, its committed charges are
read back from the topic first (like the ledger), so a crash or a rebalance neither loses a
charge nor counts one twice.

Two workers may spend a shop's last segments at the same moment: the overdraft is at most what
was being sent for that shop then, it is charged, and the balance shows it below zero.
"""

from __future__ import annotations

import asyncio

from streams.core.sms_quota import AccountBook, Charged, charged_key, charged_value
from streams.logs import fields, get_logger
from streams.runtime.records import Write
from streams.runtime.topic_reader import read_to_end

log = get_logger("sms_account")
Partition = tuple[str, int]
READ_TIMEOUT_SECONDS = 120.0


class SmsQuota:
    def __init__(self, book: AccountBook, account_topic: str, bootstrap_servers: str) -> None:
        self.book = book
        self.topic = account_topic
        self._bootstrap = bootstrap_servers

    def reserve(self, shop_id: int, cost: int) -> bool:
        return self.book.reserve(shop_id, cost)

    def release(self, shop_id: int, cost: int) -> None:
        self.book.release(shop_id, cost)

    def charge(self, source: Partition, shop_id: int, cost: int) -> Write:
        """The record that charges one sent SMS of ``cost`` segments (write it with its outcome)."""
        return self._count(source, shop_id, segments=cost, messages=1, refused=0)

    def refusal(self, source: Partition, shop_id: int) -> Write:
        """The record that counts one SMS not sent for lack of balance."""
        return self._count(source, shop_id, segments=0, messages=0, refused=1)

    def _count(self, source: Partition, shop_id: int, segments: int, messages: int, refused: int) -> Write:
        topic, partition = source
        known = self.book.charged(shop_id, topic, partition)
        counted = Charged(
            shop_id=shop_id,
            segments=known.segments + segments,
            messages=known.messages + messages,
            refused=known.refused + refused,
            version=known.version + 1,
        )
        self.book.merge(topic, partition, counted)
        return Write(self.topic, charged_key(shop_id, topic, partition), charged_value(counted))

    async def restore(self, partitions: list[Partition]) -> None:
        """Read back the committed charges of newly assigned partitions (and everything else the
        topic holds) before their first delivery is sent."""
        if not partitions:
            return
        owned = set(partitions)

        def read() -> list[tuple[bytes | None, bytes | None]]:
            return [
                (message.key(), message.value())
                for message in read_to_end(self._bootstrap, self.topic, None, READ_TIMEOUT_SECONDS)
            ]

        records = await asyncio.to_thread(read)  # applied here, on the loop that uses the book
        for key, value in records:
            parts = (key or b"").decode(errors="replace").split("/")
            if parts[0] == "charged" and len(parts) == 4 and (parts[2], _number(parts[3])) in owned:
                self.book.apply(key, value, restore=True)
            else:
                self.book.apply(key, value)
        log.info("SMS charges restored", extra=fields(partitions=len(partitions), records=len(records)))


def _number(text: str) -> int:
    return int(text) if text.isdigit() else -1
