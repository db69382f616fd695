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
followed once from the account topic (purchases, every worker's charges: a record per shop and
send-topic partition, so it grows with shops, not with traffic). What a lane charges for a
partition it owns is its own to write: when the partition is assigned, the follower is brought up
to the topic's end and the partition's committed charges replace whatever this process counted.

Two workers may spend a shop's last segments at the same moment: the overdraft is at most what
was being sent for that shop then, it is charged, and the balance shows it below zero.

The charge that takes a shop's balance below its threshold is committed with the event that tells
the seller (:mod:`streams.core.low_balance`); the lane remembers the crossings it told (a bounded
number), and a copy told by another worker or after a restart is a duplicate downstream.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from confluent_kafka import KafkaException

from streams.core.low_balance import low_balance_event
from streams.core.shops import ShopRules
from streams.core.sms_quota import AccountBook, Charged, charged_key, charged_value
from streams.logs import fields, get_logger
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.records import Write

log = get_logger("sms_account")
Partition = tuple[str, int]
READ_TIMEOUT_SECONDS = 120.0
ATTEMPTS = 3
TOLD_KEPT = 10_000
"""crossings a worker remembers having told (a copy beyond is a duplicate downstream)"""


class SmsQuota:
    def __init__(
        self,
        book: AccountBook,
        account_topic: str,
        follower: TableFollower,
        shops: Callable[[int], ShopRules | None] = lambda _: None,
        events_topic: str | None = None,
    ) -> None:
        self.book = book
        self.topic = account_topic
        self.follower = follower
        """the worker's one reader of the account topic (purchases, every worker's charges)"""
        self.shops = shops
        """the shops' settings (their low-balance thresholds, their sellers)"""
        self.events_topic = events_topic
        """where the pipeline's own events go (``sms_balance.low``)"""
        self._told: OrderedDict[str, None] = OrderedDict()

    def low_balance(self, shop_id: int, now: datetime) -> tuple[str, Write] | None:
        """The event that tells the seller the balance fell below the threshold, with its id, when
        it did and no delivery of this worker has told it yet (it is taken at once, so that two
        deliveries in flight do not both tell it): commit it with the charge, or :meth:`untold`."""
        shop = self.shops(shop_id)
        if shop is None or self.events_topic is None:
            return None
        found = low_balance_event(shop, self.book.balance(shop_id), now)
        if found is None or found[0] in self._told:
            return None
        event_id, value = found
        self._told[event_id] = None
        if len(self._told) > TOLD_KEPT:
            self._told.popitem(last=False)
        return event_id, Write(self.events_topic, f"shop/{shop_id}".encode(), value)

    def untold(self, event_id: str) -> None:
        """The event was not committed after all: the next charge tells it."""
        self._told.pop(event_id, None)

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
        """Before a newly assigned partition's first delivery: the charges committed for it, as the
        worker's one follower of the account topic has read them up to the topic's end now."""
        if not partitions:
            return
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await asyncio.wait_for(self.follower.up_to_now(), READ_TIMEOUT_SECONDS)
                break
            except (KafkaException, TimeoutError) as exc:
                log.warning("SMS charges not restored yet", extra=fields(attempt=attempt, detail=repr(exc)))
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(attempt)
        for topic, number in partitions:
            self.book.committed_only(topic, number)
        log.info("SMS charges restored", extra=fields(partitions=len(partitions)))
