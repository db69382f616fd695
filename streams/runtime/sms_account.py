"""SMS balances at send time: an SMS is charged *before* Aliyun is asked, and that charge is
committed first; its outcome then settles it (a refund when Aliyun surely did not send it), or the
delivery ends ``sms_quota_exhausted`` when the balance cannot cover it.

Why before: a provider call cannot be undone, and a crash between Aliyun accepting an SMS and
the commit of its outcome sends the delivery again after the restart, which Aliyun may then
refuse (a phone's flow control, say). Charged only with the outcome, that SMS would have been sent
uncharged. Charged first, the delivery is known as *pending* on its partition's record; read again
after a crash it is in doubt: it is not charged twice, and not refunded whatever Aliyun answers
then (a crash errs on the shop paying for an SMS it may have received, never on one given away).

Every SMS sender lane of a worker shares one :class:`~streams.core.sms_quota.AccountBook`,
followed from the account topic (other workers' charges, purchases). What a lane charges for a
partition it owns is its own to write: when the partition is assigned, its committed charges are
read back from the topic first (like the ledger).

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

    def in_doubt(self, source: Partition, shop_id: int, delivery_id: str) -> bool:
        """Whether the delivery was charged before a crash and its outcome never written."""
        return delivery_id in self.book.charged(shop_id, *source).pending

    def charge_ahead(self, source: Partition, shop_id: int, delivery_id: str, cost: int) -> Write | None:
        """The record that charges an SMS about to be sent (commit it before Aliyun is asked), or
        None when the shop's balance cannot cover it."""
        if self.book.balance(shop_id).available < cost:
            return None
        return self._count(source, shop_id, cost, messages=1, add=delivery_id)

    def settle(self, source: Partition, shop_id: int, delivery_id: str, refund: int) -> Write:
        """The record that closes a charged delivery (write it with its outcome), giving back
        ``refund`` segments when Aliyun did not send it."""
        return self._count(source, shop_id, -refund, messages=-1 if refund else 0, drop=delivery_id)

    def refusal(self, source: Partition, shop_id: int) -> Write:
        """The record that counts one SMS not sent for lack of balance."""
        return self._count(source, shop_id, 0, messages=0, refused=1)

    def _count(
        self,
        source: Partition,
        shop_id: int,
        segments: int,
        messages: int,
        refused: int = 0,
        add: str | None = None,
        drop: str | None = None,
    ) -> Write:
        topic, partition = source
        known = self.book.charged(shop_id, topic, partition)
        pending = [d for d in known.pending if d != drop] + ([add] if add else [])
        counted = Charged(
            shop_id=shop_id,
            segments=known.segments + segments,
            messages=known.messages + messages,
            refused=known.refused + refused,
            version=known.version + 1,
            pending=pending,
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
