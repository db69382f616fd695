"""The router: event records in, dispatches on the channel send topics out (or a skip or a dead
letter with its outcome). Records are taken in batches; every write of a batch is produced at
once and the batch's offsets move on when all are acknowledged. One log line per batch.

The dispatches of an event are keyed like the event (its order number), so one order's messages
stay in order through the send topics; a verification code is keyed by its recipient, so every
code of a phone is on one partition of the codes topic, with that phone's limits; a Mini Program
delivery is keyed by its buyer too, and so are the buyer's answers to the subscription panel,
forwarded to the Mini Program's send topic, where its sender keeps what each buyer accepted. A
dispatch and its sender's ledger entry share the send topic's partition. What a batch leads to is committed
with the batch's offsets, in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from channels.base import ChannelName
from streams.core.buyer_choices import (
    CHOICES_KIND,
    NOTICE_KIND,
    Notice,
    Send,
    choices_summary,
    notice_id,
)
from streams.core.dispatch import AnswerTo, Dispatch
from streams.core.errors import EventRejected
from streams.core.events import (
    Event,
    MpSubscriptionAnsweredEvent,
    PreferencesChangedEvent,
    SmsPackagePaidEvent,
    parse_event,
)
from streams.core.failures import Failure, Stage
from streams.core.mp_subscriptions import ANSWER_KIND, KIND_HEADER, Answers
from streams.core.outcomes import DUPLICATE_EVENT, Status, event_outcome
from streams.core.render_plan import ShopPlan
from streams.core.routing import Router, Routing, send_key
from streams.core.sms_quota import AccountBook, PaymentRefused, payment_record
from streams.core.topics import Topics
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import LaneConfig
from streams.runtime.lanes.ledger import Ledger
from streams.runtime.lanes.stage import Clock, PipelineStage, utc_now
from streams.runtime.lanes.stateful_lane import LoadedFirstLane

log = get_logger("router")
SMS_PURCHASE_PAID = "sms_purchase_paid"
"""the reason of a payment event's outcome: no message to send, an order credited"""
PAYMENT_TYPE = b'"sms_package.paid"'
"""how a batch with a payment event is told apart before it is parsed"""
ACCOUNTS_WAIT_SECONDS = 30.0


class RouterStage(PipelineStage):
    stage = Stage.PARSE

    def __init__(
        self,
        topics: Topics,
        router: Router,
        plans: Mapping[int, ShopPlan],
        ledger: Ledger,
        clock: Clock = utc_now,
        book: AccountBook | None = None,
    ) -> None:
        super().__init__(topics, ledger, clock)
        self.router = router
        self.plans = plans
        self.book = book
        """the SMS purchase orders (the worker's one follower of the account topic), for payments"""
        self.counts: Counter[str] = Counter()
        """what the records handled since the last batch line became"""

    def handle(self, record: ConsumedRecord) -> list[Write]:
        try:
            event = parse_event(record.value)
        except EventRejected as exc:
            key = str(record.source)
            if self.already_final(key, record):
                return self._count("already_final", [])
            failure = self.failure(record, exc.reason.value, exc.detail)
            return self._count("dead_lettered", self._dead_letter(record, failure, key))
        if self.already_final(event.id, record):  # an event skipped or dead-lettered, published again
            return self._count("duplicate", self._duplicate(record, event.id, event.shop_id))
        if isinstance(event, SmsPackagePaidEvent):
            return self._count("payments", self._paid(record, event))
        if isinstance(event, MpSubscriptionAnsweredEvent):
            return self._count("mp_answers", self._answered(record, event))
        if isinstance(event, PreferencesChangedEvent):
            return self._count("preferences", self._chose(record, event))
        return self._route(record, event)

    def _route(self, record: ConsumedRecord, event: Event) -> list[Write]:
        """The dispatches of an event, or its skip with the reasons."""
        try:
            routing = self.router.route(event, self.plans.get(event.shop_id), record.source, self.clock())
        except Exception as exc:  # a routing bug must dead-letter the event, not lose it
            log.exception("routing failed", extra=fields(event_id=event.id, source=str(record.source)))
            failure = self.failure(record, "internal_error", repr(exc), event.id, Stage.ROUTE)
            return self._count("dead_lettered", self._dead_letter(record, failure, event.id, event.shop_id))
        if routing.dispatches:
            order_key = record.key or event.id.encode()
            self.counts["deliveries"] += len(routing.dispatches)
            code_scenes = self.router.code_scenes
            writes = []
            noticed: dict[str, list[Dispatch]] = {}
            for d in routing.dispatches:
                if d.scene in routing.buyers:
                    noticed.setdefault(d.scene, []).append(d)
                    continue
                code = d.scene in code_scenes
                topic = self.topics.send_topic_for(d.delivery.channel, code)
                writes.append(Write(topic, send_key(d, order_key, code), d.to_json()))
            writes += self._notices(event, routing, noticed, order_key)
            return self._count("routed", writes)
        reasons = "; ".join(map(str, routing.skips)) or "nothing to send"
        if log.isEnabledFor(logging.DEBUG):
            log.debug("skipped", extra=fields(event_id=event.id, shop_id=event.shop_id, reason=reasons))
        return self._count("skipped", self._skipped(record, event, reasons))

    def _notices(
        self, event: Event, routing: Routing, noticed: dict[str, list[Dispatch]], order_key: bytes
    ) -> list[Write]:
        """A buyer's dispatches, one notice per scene, to the buyers lane (keyed by the buyer), each
        with the topic key it goes on with: the buyers lane passes them on without reading them."""
        plan = self.plans.get(event.shop_id) or ShopPlan(event.shop_id)
        writes = []
        for scene, dispatches in noticed.items():
            buyer = routing.buyers[scene]
            if buyer.fallback is not None:  # tried in the shop's order; one it does not name, last
                rank = {channel: place for place, channel in enumerate(buyer.fallback)}
                to = AnswerTo(buyer.user_id, notice_id(event.id, scene))  # whom its senders answer
                ordered = sorted(dispatches, key=lambda d: rank.get(d.delivery.channel, len(rank)))
                dispatches = [replace(d, answer_to=to) for d in ordered]
            sends = [
                Send(d.delivery.channel, send_key(d, order_key, False).decode(errors="replace"), d.to_text())
                for d in dispatches
            ]
            notice = Notice(
                buyer.user_id,
                event.shop_id,
                event.id,
                scene,
                buyer.category,
                plan.daily_caps.get(buyer.category),
                sends,
                quiet=plan.quiet.get(buyer.category),
                valid_until=buyer.valid_until,
                fallback=buyer.fallback is not None,
            )
            headers = [(KIND_HEADER, NOTICE_KIND)]
            writes.append(Write(self.topics.buyers, notice.user_id.encode(), notice.to_json(), headers))
        return writes

    def _paid(self, record: ConsumedRecord, event: SmsPackagePaidEvent) -> list[Write]:
        """An SMS package order paid through the mall's payment service: its payment recorded on
        the account topic in this batch's transaction, under the order's key (delivered twice, it
        credits once). A payment for no known order, for another amount, or made after the order
        expired is dead-lettered for an operator (replayable once the order is known)."""
        paid = event.data
        book = self.book or AccountBook()  # a router that does not follow the orders knows none
        payment = book.pay(
            event.shop_id,
            paid.purchase_id,
            f"payment:{paid.payment_no}",
            f"paid through the mall: {paid.payment_no}"[:200],
            paid.paid_at,
            amount_fen=paid.amount_fen,
        )
        if isinstance(payment, PaymentRefused):
            failure = self.failure(record, payment.reason, payment.detail, event.id, Stage.ROUTE)
            return self._dead_letter(record, failure, event.id, event.shop_id)
        purchase = book.purchase(event.shop_id, paid.purchase_id)
        assert purchase is not None  # it was just paid
        credited = f"{SMS_PURCHASE_PAID}: {purchase.messages} messages credited"
        return [
            Write(self.topics.sms_account, *payment_record(payment)),
            *self._skipped(record, event, credited),
        ]

    def _answered(self, record: ConsumedRecord, event: MpSubscriptionAnsweredEvent) -> list[Write]:
        """A buyer's answers to the Mini Program's subscription panel: forwarded to the Mini
        Program's send topic under the buyer's key (where that buyer's deliveries go, in order), in
        this batch's transaction; the event ends skipped, saying what was answered."""
        answered = event.data
        answers = Answers(
            event_id=event.id,
            shop_id=event.shop_id,
            results=dict(answered.results),
            long_term=answered.long_term,
            answered_at=answered.answered_at,
        )
        buyer = self.router.address_key(ChannelName.WECHAT_MP, answered.openid)
        forward = Write(
            self.topics.send_topic(ChannelName.WECHAT_MP),
            buyer,
            answers.to_json(),
            [(KIND_HEADER, ANSWER_KIND)],
        )
        return [forward, *self._skipped(record, event, answers.summary())]

    def _chose(self, record: ConsumedRecord, event: PreferencesChangedEvent) -> list[Write]:
        """A buyer's preferences: forwarded as they are to the buyers' topic under the buyer's key
        (where that buyer's notices go, in order), in this batch's transaction; the event ends
        skipped, saying what the buyer now refuses."""
        chose = event.data
        forward = Write(
            self.topics.buyers, chose.user_id.encode(), record.value, [(KIND_HEADER, CHOICES_KIND)]
        )
        return [forward, *self._skipped(record, event, choices_summary(chose, event.shop_id))]

    def _duplicate(self, record: ConsumedRecord, event_id: str, shop_id: int) -> list[Write]:
        """An event id already skipped or dead-lettered, on another record: upstream published it
        twice (with the same key, so on the same partition). It ends skipped as a duplicate. (An
        event routed twice is routed again: its senders find the deliveries final.)"""
        metrics.DUPLICATES_SUPPRESSED.labels("event").inc()
        outcome = event_outcome(
            Status.SKIPPED, DUPLICATE_EVENT, record.source, self.clock(), event_id=event_id, shop_id=shop_id
        )
        return [self.outcome(outcome)]

    def _skipped(self, record: ConsumedRecord, event: Event, reason: str) -> list[Write]:
        """An event that sends nothing, with the reason: its final outcome."""
        outcome = event_outcome(
            Status.SKIPPED, reason, record.source, self.clock(), event_id=event.id, shop_id=event.shop_id
        )
        return self.final(record, event.id, outcome)

    def _dead_letter(
        self, record: ConsumedRecord, failure: Failure, key: str, shop_id: int | None = None
    ) -> list[Write]:
        outcome = event_outcome(Status.DEAD_LETTERED, failure, record.source, self.clock(), shop_id=shop_id)
        return [self.dead_letter(record, failure), *self.final(record, key, outcome)]

    def _count(self, what: str, writes: list[Write]) -> list[Write]:
        self.counts[what] += 1
        return writes


class RouterLane(LoadedFirstLane):
    """Routes nothing before the shops' settings are loaded (``ready``)."""

    stage: RouterStage

    def __init__(
        self,
        config: LaneConfig,
        stage: RouterStage,
        transactions: Transactions,
        *,
        batch: int,
        ready: asyncio.Event,
        accounts: TableFollower | None = None,
    ) -> None:
        super().__init__("router", config, transactions, batch=batch, ready=ready)
        self.stage = stage
        self.accounts = accounts
        """the worker's follower of the account topic (the SMS orders the payments pay)"""

    async def handle(self, records: list[ConsumedRecord]) -> None:
        per_topic = Counter(record.topic for record in records)
        for topic, count in per_topic.items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(count)
        if self.accounts is not None and any(PAYMENT_TYPE in (record.value or b"") for record in records):
            # an order is acknowledged before it can be paid: read the orders up to now first, so a
            # payment is never dead-lettered for an order this worker has not read yet
            await asyncio.wait_for(self.accounts.up_to_now(), ACCOUNTS_WAIT_SECONDS)
        for record in records:
            self.finish(record, self.stage.handle(record))
        counts, self.stage.counts = self.stage.counts, Counter()
        log.debug("routed a batch", extra=fields(events=len(records), **dict(counts)))
