"""The buyers lane: what each buyer lets the shops send them, and how much marketing a buyer gets
a day (:mod:`streams.core.buyer_choices`), between the router and the send topics.

It reads ``notify.buyers``, where the router puts, keyed by the buyer's user id, every notice to a
buyer but the verification codes (one record per scene, with its dispatches) and every
``preferences.changed`` event; so a buyer's preferences and notices arrive on one partition, in
the order the router read them, and the partition's owner alone keeps that buyer's state: their
no's per scope (a shop, the whole mall) and, per shop and capped category, the notices counted
today. Both are in the lane's store, on disk, with the compacted changelog
``notify.state.buyers`` written in the transaction of the record that changed them.

A notice's dispatches go to their send topics as the router would have sent them (same topic, same
key), or end ``skipped``: ``opted_out`` (the buyer refuses the category or the channel),
``frequency_cap`` (the shop's cap for the category is reached today; the whole notice) or
``expired`` (its scene, a coupon, ends before the buyer's quiet hours do). A notice of a category
the shop holds in its quiet hours, decided inside the buyer's window (their own, else the
shop's), is held: written to a delay bucket (:mod:`streams.core.quiet_hours`), from which the
deferred lane gives it back here, where it is decided again: sent once the window is over
(counted against the cap then, on the day it goes out), its outcomes saying ``deferred_until``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import UTC, datetime

from pydantic import ValidationError

from streams.core.buyer_choices import (
    CHOICES_KIND,
    FREQUENCY_CAP,
    NO_CHOICES,
    NOTICE_KIND,
    PLATFORM,
    Choices,
    DayCount,
    Notice,
    Send,
    admit,
    day_of,
    parse_notice,
    quiet_window,
    refusal,
    scope_of,
)
from streams.core.dispatch import Dispatch, parse_dispatch
from streams.core.errors import EventRejected
from streams.core.events import PreferencesChangedEvent, parse_event
from streams.core.failures import Stage
from streams.core.fallback import (
    ENDED_KIND,
    FALLBACK,
    FALLBACK_UNUSED,
    Chain,
    Ended,
    after,
    parse_answer,
    parse_chain,
    start,
)
from streams.core.mp_subscriptions import KIND_HEADER
from streams.core.outcomes import DUPLICATE_EVENT, skipped_delivery
from streams.core.quiet_hours import DEFERRED, EXPIRED, HOLD_HEADER, expires_before, hold
from streams.core.rendering import MALL_TIME_ZONE
from streams.core.topics import Topics
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import Lane, LaneConfig
from streams.runtime.lanes.stage import Clock, PipelineStage, utc_now
from streams.runtime.state.store import Partition, Store

log = get_logger("buyers")
CHOICES = 1
"""the tag of a buyer's choices in one scope (kept as long as the buyer does not change them)"""
COUNTS = 2
"""the tag of a buyer's count of one shop's notices of one category today"""
CHOICES_TTL_SECONDS = 10 * 365 * 86400.0
COUNTS_TTL_SECONDS = 2 * 86400.0
CHAINS = 3
"""the tag of a notice's channels still to go while one is in flight (channel fallback)"""
CHAINS_TTL_SECONDS = 3 * 86400.0
"""a chain whose answer never came (its channel's sender lane not running) is forgotten after this"""


def _choices_key(scope: str, user_id: str) -> bytes:
    return f"choices:{scope}|{user_id}".encode()


def _count_key(shop_id: int, user_id: str, category: str) -> bytes:
    return f"count:{shop_id}|{user_id}|{category}".encode()


def _chain_key(notice_id: str) -> bytes:
    return f"chain:{notice_id}".encode()


class BuyerState:
    """The buyers' choices and counts of the partitions the lane owns."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def choices(self, source: Partition, scope: str, user_id: str) -> Choices:
        entry = self.store.partition(source).get(_choices_key(scope, user_id))
        return Choices.unpack(entry.payload) if entry is not None else NO_CHOICES

    def chose(self, source: Partition, scope: str, user_id: str, choices: Choices) -> list[Write]:
        """The write that keeps newer choices (none for an older change read late)."""
        if not choices.newer_than(self.choices(source, scope, user_id)):
            return []
        state = self.store.partition(source)
        return [state.put(_choices_key(scope, user_id), choices.pack(), self.store.clock(), CHOICES)]

    def count(self, source: Partition, notice: Notice, day: str) -> DayCount:
        entry = self.store.partition(source).get(_count_key(notice.shop_id, notice.user_id, notice.category))
        return (DayCount.unpack(entry.payload) if entry is not None else DayCount(day)).on(day)

    def counted(self, source: Partition, notice: Notice, count: DayCount) -> Write:
        key = _count_key(notice.shop_id, notice.user_id, notice.category)
        return self.store.partition(source).put(key, count.pack(), self.store.clock(), COUNTS)

    def chain(self, source: Partition, notice_id: str) -> Chain | None:
        entry = self.store.partition(source).get(_chain_key(notice_id))
        return parse_chain(entry.payload) if entry is not None else None

    def chained(self, source: Partition, notice_id: str, chain: Chain | None) -> Write:
        """The write that keeps a notice's chain (None: it ended)."""
        state, key = self.store.partition(source), _chain_key(notice_id)
        return (
            state.delete(key)
            if chain is None
            else state.put(key, chain.to_json(), self.store.clock(), CHAINS)
        )


class BuyerStage(PipelineStage):
    stage = Stage.ROUTE

    def __init__(
        self, topics: Topics, state: BuyerState, clock: Clock = utc_now, hours: Clock | None = None
    ) -> None:
        super().__init__(topics, None, clock)
        self.state = state
        self.hours = hours or clock
        """the clock of the buyers' hours and days (quiet hours, daily caps): the system's, or the
        demo's (MALL_NOTIFY_CLOCK_FILE); outcomes are stamped with ``clock``"""
        self.counts: Counter[str] = Counter()
        self.sent = metrics.BUYER_DECISIONS.labels("sent")

    def handle(self, record: ConsumedRecord) -> list[Write]:
        source = (record.topic, record.partition)
        if (KIND_HEADER, CHOICES_KIND) in record.headers:
            return self._chose(record, source)
        if (KIND_HEADER, ENDED_KIND) in record.headers:
            return self._answered(record, source)
        try:
            notice = parse_notice(record.value)
        except ValidationError as exc:  # the router wrote it: a bug or a foreign writer
            return self.dead_lettered(record, "malformed_notice", str(exc)[:500])
        return self._decide(notice, source, self.hours())

    def _chose(self, record: ConsumedRecord, source: Partition) -> list[Write]:
        try:
            event = parse_event(record.value)
        except EventRejected as exc:  # the router parsed it before forwarding it
            return self.dead_lettered(record, exc.reason.value, exc.detail)
        if not isinstance(event, PreferencesChangedEvent):
            return self.dead_lettered(record, "not_preferences", f"a {event.type} event")
        chose = event.data
        self.counts["preferences"] += 1
        return self.state.chose(source, scope_of(chose, event.shop_id), chose.user_id, Choices.of(chose))

    def _decide(self, notice: Notice, source: Partition, now: datetime) -> list[Write]:
        shop = self.state.choices(source, str(notice.shop_id), notice.user_id)
        platform = self.state.choices(source, PLATFORM, notice.user_id)
        passing: list[Send] = []
        writes: list[Write] = []
        for send in notice.sends:
            refused = refusal(notice.category, send.channel, shop, platform)
            if refused is None:
                passing.append(send)
            else:
                writes.append(self._skipped(notice, send, refused, "opted_out"))
        if not passing:
            return writes
        if expires_before(notice.valid_until, now):
            return writes + self._expired(notice, passing)
        until = quiet_window(notice.quiet, shop, platform).ends_after(now) if notice.quiet else None
        if until is not None:
            return writes + self._held(notice, passing, until, now)
        return writes + self._capped(notice, passing, source, now)

    def _capped(self, notice: Notice, passing: list[Send], source: Partition, now: datetime) -> list[Write]:
        """The notice on to its send topics, counted, or ``frequency_cap`` when the day's count is full."""
        writes = []
        if notice.daily_cap is not None:
            count = self.state.count(source, notice, day_of(now))
            admitted, after = admit(count, notice.notice_id, notice.daily_cap)
            if not admitted:
                reason = f"{FREQUENCY_CAP}: {notice.daily_cap} {notice.category} notices today from this shop"
                return [self._skipped(notice, send, reason, FREQUENCY_CAP) for send in passing]
            if after != count:
                writes.append(self.state.counted(source, notice, after))
        if notice.fallback and len(passing) > 1:
            return writes + self._first_of(notice, passing, source)
        writes += [self._onward(send, self._released(notice, send.dispatch)) for send in passing]
        self.sent.inc(len(passing))
        return writes

    def _first_of(self, notice: Notice, passing: list[Send], source: Partition) -> list[Write]:
        """first_reachable: the first send on its way, the others kept until it is answered. A copy
        of a notice whose chain is under way (the event published twice) sends nothing: each of its
        sends ends ``skipped`` as a duplicate, the chain under way goes on."""
        if self.state.chain(source, notice.notice_id) is not None:
            return [self._skipped(notice, send, DUPLICATE_EVENT, DUPLICATE_EVENT) for send in passing]
        # each dispatch names its buyer and notice (``answer_to``, the router's): its sender answers
        sends = (
            passing
            if notice.deferred_until is None
            else [dataclasses.replace(s, dispatch=self._released(notice, s.dispatch)) for s in passing]
        )
        first, chain = start(sends)
        self.sent.inc()
        return [self.state.chained(source, notice.notice_id, chain), self._onward(first, first.dispatch)]

    def _answered(self, record: ConsumedRecord, source: Partition) -> list[Write]:
        """A sender's word on how a delivery of a chain ended: the next channel, or the chain's end."""
        try:
            answer = parse_answer(record.value)
        except ValidationError as exc:  # a sender wrote it: a bug or a foreign writer
            return self.dead_lettered(record, "malformed_answer", str(exc)[:500])
        step = after(self.state.chain(source, answer.notice_id), answer)
        if step is None:  # read again, or about a channel no longer in flight
            self.counts["answers ignored"] += 1
            return []
        if isinstance(step, Ended):
            ended = [
                self._ended(parse_dispatch(send.dispatch.encode()), step.reason, FALLBACK_UNUSED)
                for send in step.untried
            ]
            return [self.state.chained(source, answer.notice_id, None), *ended]
        metrics.BUYER_DECISIONS.labels(FALLBACK).inc()
        following = dataclasses.replace(parse_dispatch(step.send.dispatch.encode()), fallback_from=step.after)
        chain = self.state.chained(source, answer.notice_id, step.chain)
        return [chain, self._onward(step.send, following.to_text())]

    def _onward(self, send: Send, dispatch: str) -> Write:
        """A dispatch to its send topic, under the key the router gave it."""
        return Write(self.topics.send_topic(send.channel), send.key.encode(), dispatch.encode())

    def _held(self, notice: Notice, passing: list[Send], until: datetime, now: datetime) -> list[Write]:
        """The notice to the delay bucket it waits in (or ``expired`` when it would wait too long)."""
        held = dataclasses.replace(notice, sends=passing, deferred_until=until.timestamp())
        if expires_before(notice.valid_until, until):
            return self._expired(held, passing)
        if notice.deferred_until is None:
            metrics.BUYER_DECISIONS.labels(DEFERRED).inc(len(passing))
        waiting = hold(until, now, self.topics.deferred_waits)
        headers = [(KIND_HEADER, NOTICE_KIND), (HOLD_HEADER, str(waiting.read_again_at.timestamp()).encode())]
        topic = self.topics.deferred[waiting.bucket]
        return [Write(topic, notice.user_id.encode(), held.to_json(), headers)]

    def _expired(self, notice: Notice, passing: list[Send]) -> list[Write]:
        assert notice.valid_until is not None
        ends = datetime.fromtimestamp(notice.valid_until, MALL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")
        reason = f"{EXPIRED}: the {notice.category} notice ends at {ends}, before it could go out"
        return [self._skipped(notice, send, reason, EXPIRED) for send in passing]

    def _skipped(self, notice: Notice, send: Send, reason: str, decision: str) -> Write:
        return self._ended(self._held_until(notice, parse_dispatch(send.dispatch.encode())), reason, decision)

    def _ended(self, dispatch: Dispatch, reason: str, decision: str) -> Write:
        """A dispatch that is not sent: its outcome, ``skipped`` with the reason."""
        metrics.BUYER_DECISIONS.labels(decision).inc()
        return self.outcome(skipped_delivery(dispatch, reason, self.clock(), replayed=False))

    @staticmethod
    def _held_until(notice: Notice, dispatch: Dispatch) -> Dispatch:
        """The dispatch saying until when its notice was held, if it was."""
        if notice.deferred_until is None:
            return dispatch
        return dataclasses.replace(
            dispatch, deferred_until=datetime.fromtimestamp(notice.deferred_until, UTC)
        )

    def _released(self, notice: Notice, dispatch: str) -> str:
        """The dispatch as it goes on (read only when its notice was held, to say until when)."""
        if notice.deferred_until is None:
            return dispatch
        return self._held_until(notice, parse_dispatch(dispatch.encode())).to_text()


class BuyersLane(Lane):
    """Takes up to ``batch`` records at a time; restores its buyers' state with their partitions."""

    def __init__(
        self, config: LaneConfig, stage: BuyerStage, transactions: Transactions, *, batch: int
    ) -> None:
        super().__init__("buyers", config, transactions)
        self.stage = stage
        self.batch = batch

    def stores(self) -> list[Store]:
        return [self.stage.state.store]

    async def room(self, stopping: asyncio.Event) -> int:
        await self.transactions.room()
        return 0 if stopping.is_set() else self.batch

    async def handle(self, records: list[ConsumedRecord]) -> None:
        for record in records:
            self.finish(record, self.stage.handle(record))
        counts, self.stage.counts = self.stage.counts, Counter()
        if counts:
            log.debug("buyers' preferences saved", extra=fields(**dict(counts)))

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return self.stage.unwritable(record, detail)
