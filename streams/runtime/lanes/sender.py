"""A sender: one per channel, each with its own consumer of the channel's send topic, so a slow or
failing provider slows only its own channel.

Up to ``concurrency`` deliveries are in flight at once (the per-account limits of the channel, not
this loop, bound the send rate); deliveries with the same key (one order's) go one after the other,
in the order they were routed. A delivery becomes a provider call and then a final outcome (and a
ledger entry on its partition), a retry record (in flight, waiting in a retry tier) or a dead
letter. Never raises for a bad record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from channels.base import Channel, ChannelName, Delivery, ErrorClass, SendResult, SentLookup
from streams.core.dispatch import Dispatch, ValidationError, parse_dispatch
from streams.core.failures import Failure, Stage
from streams.core.fallback import ENDED_KIND, Answer
from streams.core.mp_subscriptions import ANSWER_KIND, KIND_HEADER, NO_SUBSCRIPTION, Answers
from streams.core.outcomes import (
    DUPLICATE_EVENT,
    Outcome,
    Status,
    delivery_outcome,
    event_outcome,
    skipped_delivery,
)
from streams.core.receipts import sent_record
from streams.core.recipients import is_sealed, seal, unseal
from streams.core.retry import GiveUp, decide
from streams.core.sms_quota import QUOTA_EXHAUSTED
from streams.core.topics import Topics
from streams.logs import Repeats, fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.code_limits import CodeLimits
from streams.runtime.lanes.lane import LaneConfig, Partition
from streams.runtime.lanes.ledger import Ledger
from streams.runtime.lanes.sms_account import SmsQuota
from streams.runtime.lanes.stage import Clock, PipelineStage, utc_now
from streams.runtime.lanes.stateful_lane import StatefulLane
from streams.runtime.lanes.subscriptions import Subscriptions
from streams.runtime.lanes.webhooks import EndpointHealth
from streams.runtime.state.store import NotOwned, Store

log = get_logger("sender")
SUMMARIES = Repeats(log, interval_seconds=30.0)
"""what happens to single deliveries (failed sends, scheduled retries, sends in doubt, codes and
SMS not sent, duplicates): one line per channel and cause each 30 s, with how many more there
were (an outage is a few lines, not one per delivery); each failed send at DEBUG"""
TAKE_FRACTION = 8
BATCH_WAIT_SECONDS = 0.005
"""With fewer than 1/TAKE_FRACTION of its slots free, a lane waits this long before it takes more."""


CommitFirst = Callable[[ConsumedRecord, list[Write]], Awaitable[None]]
"""Commits writes of a record before it is finished (an SMS's charge before Aliyun is asked)."""


async def _no_transactions(record: ConsumedRecord, writes: list[Write]) -> None:
    raise RuntimeError("a sender stage without a lane cannot commit ahead")


class SenderStage(PipelineStage):
    stage = Stage.SEND
    ledger: Ledger

    def __init__(
        self,
        topics: Topics,
        channel: Channel,
        ledger: Ledger,
        clock: Clock = utc_now,
        rand: Callable[[], float] = random.random,
        codes: CodeLimits | None = None,
        quota: SmsQuota | None = None,
        recipient_key: bytes | None = None,
        lookup: SentLookup | None = None,
        subscriptions: Subscriptions | None = None,
        endpoints: EndpointHealth | None = None,
    ) -> None:
        super().__init__(topics, ledger, clock)
        self.channel = channel
        self.rand = rand
        self.codes = codes
        """the verification codes' lane: expiry and per-phone limits before sending"""
        self.quota = quota
        """SMS: the shops' balances, charged for what is sent"""
        self.recipient_key = recipient_key
        self.lookup = lookup
        """asks the provider whether it already took a delivery in doubt (Aliyun: QuerySendDetails)"""
        self.subscriptions = subscriptions
        """Mini Program: what each buyer accepted, checked before WeChat is called"""
        self.endpoints = endpoints
        """webhooks: each endpoint's failing spell, and switching it off"""
        self.commit_first: CommitFirst = _no_transactions
        """commits writes before the provider is asked (set by the lane)"""

    async def handle(self, record: ConsumedRecord) -> list[Write]:
        if self.subscriptions is not None and (KIND_HEADER, ANSWER_KIND) in record.headers:
            return self._answered(record, self.subscriptions)
        try:
            dispatch = self._opened(parse_dispatch(record.value))
        except (ValidationError, ValueError) as exc:
            return self._invalid(record, exc)
        delivery = dispatch.delivery
        if self.already_final(delivery.delivery_id, record):
            return self._final_already(record, dispatch)
        admitted: list[Write] = []
        if self.codes is not None:
            source = (record.topic, record.partition)
            refused, admitted = self.codes.admit(
                source, delivery.recipient, delivery.delivery_id, dispatch.event_time, self.clock()
            )
            if refused is not None:
                return self._code_refused(record, dispatch, refused)
        if self.subscriptions is not None:
            return await self._send_subscribed(record, dispatch, self.subscriptions)
        if self.quota is None:
            result = await self._send_once(dispatch, _in_doubt(record))
            return [
                *admitted,
                *self._after_send(record, dispatch, result, self._unsent(record, dispatch, result)),
            ]
        return await self._send_charged(record, dispatch, self.quota, admitted)

    def _final_already(self, record: ConsumedRecord, dispatch: Dispatch) -> list[Write]:
        """A delivery read again after its outcome: not sent again."""
        delivery = dispatch.delivery
        metrics.DUPLICATES_SUPPRESSED.labels(delivery.channel.value).inc()
        source = (record.topic, record.partition)
        if not self.ledger.same_origin(source, delivery.delivery_id, str(dispatch.source)):
            # upstream published the event again: this copy ends skipped, with its own outcome (and
            # its chain, when its notice's channels fall back, ends with it)
            skipped = skipped_delivery(dispatch, DUPLICATE_EVENT, self.clock(), replayed=False)
            return [self.outcome(skipped), *self._answer(dispatch, skipped, unreachable=False)]
        SUMMARIES.log(logging.INFO, f"{delivery.channel.value}: already final, not sent again")
        return []

    async def _send_subscribed(
        self, record: ConsumedRecord, dispatch: Dispatch, subscriptions: Subscriptions
    ) -> list[Write]:
        """A Mini Program delivery: sent only when its buyer has an acceptance left for its template,
        which the message then uses; a 43101 from WeChat sets what is left to nothing."""
        buyer, template_id = record.key or b"", dispatch.delivery.template_id
        source = (record.topic, record.partition)
        if not subscriptions.allowance(source, buyer, template_id).allows:
            return self._not_asked(record, dispatch)
        result = await self._send_once(dispatch, _in_doubt(record))
        if result.ok:
            spent = subscriptions.used(source, buyer, template_id)
        elif result.reason == NO_SUBSCRIPTION:
            spent = subscriptions.none_left(source, buyer, template_id)
        else:
            spent = []
        return self._after_send(record, dispatch, result, spent)

    def _answered(self, record: ConsumedRecord, subscriptions: Subscriptions) -> list[Write]:
        """A buyer's answers to the subscription panel, forwarded by the router: kept. (The event's
        outcome is the router's; a record that is not answers is dead-lettered.)"""
        try:
            answers = Answers.model_validate_json(record.value or b"")
        except ValueError as exc:
            return self._invalid(record, exc)
        for answer in answers.results.values():
            metrics.MP_ANSWERS.labels(answer).inc()
        return subscriptions.answered((record.topic, record.partition), record.key or b"", answers)

    def _invalid(self, record: ConsumedRecord, exc: Exception) -> list[Write]:
        """A record of the send topic that is not what the router writes: dead-lettered."""
        key = str(record.source)
        if self.already_final(key, record):
            return []
        failure = self.failure(record, "invalid_delivery", str(exc)[:500])
        outcome = event_outcome(Status.DEAD_LETTERED, failure, record.source, self.clock())
        return [self.dead_letter(record, failure), *self.final(record, key, outcome)]

    def _not_asked(self, record: ConsumedRecord, dispatch: Dispatch) -> list[Write]:
        """A Mini Program delivery whose buyer has no acceptance left for its template: skipped as
        no_subscription without calling WeChat (it would refuse with 43101)."""
        metrics.MP_NOT_ASKED.inc()
        metrics.UNREACHABLE.labels(dispatch.delivery.channel.value, NO_SUBSCRIPTION).inc()
        SUMMARIES.log(logging.INFO, "wechat_mp: no acceptance left, WeChat not asked")
        return self._skipped(record, dispatch, NO_SUBSCRIPTION, unreachable=True)

    def _skipped(
        self, record: ConsumedRecord, dispatch: Dispatch, reason: str, *, unreachable: bool = False
    ) -> list[Write]:
        """A delivery its sender decided not to send, with the reason: its final outcome."""
        replayed = bool(record.history and record.history.replays)
        skipped = skipped_delivery(dispatch, reason, self.clock(), replayed=replayed)
        return self._ended(record, dispatch, skipped, unreachable=unreachable)

    def _ended(
        self, record: ConsumedRecord, dispatch: Dispatch, outcome: Outcome, *, unreachable: bool = False
    ) -> list[Write]:
        """A delivery's final outcome and, when its notice's channels fall back, the answer the
        buyers lane waits for (under the buyer's key, in the same transaction)."""
        return [
            *self.final(record, dispatch.delivery.delivery_id, outcome),
            *self._answer(dispatch, outcome, unreachable=unreachable),
        ]

    def _answer(self, dispatch: Dispatch, outcome: Outcome, *, unreachable: bool) -> list[Write]:
        """How the delivery ended, to the buyers lane, when its notice's channels fall back."""
        to = dispatch.answer_to
        if to is None:
            return []
        answer = Answer(to.notice_id, dispatch.delivery.channel, outcome.status.value, unreachable)
        headers = [(KIND_HEADER, ENDED_KIND)]
        return [Write(self.topics.buyers, to.user_id.encode(), answer.to_json(), headers)]

    def _code_refused(self, record: ConsumedRecord, dispatch: Dispatch, refused: str) -> list[Write]:
        metrics.CODES_NOT_SENT.labels(refused.partition(":")[0]).inc()
        SUMMARIES.log(logging.INFO, f"codes not sent ({refused.partition(':')[0]})")
        return self._skipped(record, dispatch, refused)

    def _unsent(self, record: ConsumedRecord, dispatch: Dispatch, result: SendResult | None) -> list[Write]:
        """A code Aliyun surely did not send (``result`` None: not asked) no longer counts against
        its phone's limits."""
        if self.codes is None or (result is not None and not _surely_not_sent(result)):
            return []
        delivery = dispatch.delivery
        return self.codes.take_back(
            (record.topic, record.partition), delivery.recipient, delivery.delivery_id
        )

    async def _send_charged(
        self, record: ConsumedRecord, dispatch: Dispatch, quota: SmsQuota, admitted: list[Write]
    ) -> list[Write]:
        """An SMS: charged to the shop's balance and that charge committed (with the count of a
        code against its phone), then sent, then settled with its outcome (see
        :mod:`~streams.runtime.lanes.sms_account`); ``sms_quota_exhausted`` when the balance cannot
        cover it. A delivery in doubt was charged by its earlier attempt: it is not charged again."""
        delivery = dispatch.delivery
        cost = dispatch.sms_cost or 1
        source = (record.topic, record.partition)
        in_doubt = quota.in_doubt(source, dispatch.shop_id, delivery.delivery_id) or _in_doubt(record)
        if not in_doubt:
            charge = quota.charge_ahead(source, dispatch.shop_id, delivery.delivery_id, cost)
            if charge is None:
                unsent = self._unsent(record, dispatch, None)
                return [*admitted, *unsent, *self._quota_exhausted(record, dispatch, quota)]
            low = quota.low_balance(dispatch.shop_id, self.clock())
            try:
                await self.commit_first(record, [*admitted, charge, *([low[1]] if low else [])])
            except BaseException:
                if low is not None:
                    quota.untold(low[0])
                raise
            admitted = []
            if low is not None:
                metrics.SMS_LOW_BALANCE.inc()
                log.info("SMS balance low: the seller is told", extra=fields(shop_id=dispatch.shop_id))
        result = await self._send_once(dispatch, in_doubt)
        # in doubt and not asked, the earlier attempt may have gone out: its charge stands
        known = not in_doubt or self.lookup is not None
        refund = cost if known and _surely_not_sent(result) else 0
        settle = quota.settle(source, dispatch.shop_id, delivery.delivery_id, refund)
        unsent = self._unsent(record, dispatch, result)
        return [*admitted, *self._after_send(record, dispatch, result, [settle, *unsent])]

    async def _send_once(self, dispatch: Dispatch, in_doubt: bool) -> SendResult:
        """The provider's answer for a delivery sent at most once. One in doubt is asked about
        first and sent only when the provider has none of it; a refusal that a repeat would get
        (Aliyun's per-phone flow control) is asked about too, as the earlier copy may be unseen."""
        if in_doubt and self.lookup is not None:
            known = await self._took(dispatch)
            if known is not None:
                return known
        result = await self._send(dispatch.delivery)
        if result.code in REPEAT_REFUSALS and self.lookup is not None:
            known = await self._took(dispatch)
            if known is not None and known.ok:
                return known
        return result

    async def _took(self, dispatch: Dispatch) -> SendResult | None:
        """What the provider knows of a delivery: delivered, None (not taken), or a failure that
        keeps it in doubt (the provider could not be asked)."""
        assert self.lookup is not None
        delivery, now = dispatch.delivery, self.clock()
        since = dispatch.event_time or now - timedelta(days=1)
        try:
            known = await self.lookup.took(delivery, min(since, now), now)
        except Exception as exc:  # a lookup bug: still in doubt, never let it out
            log.exception("send lookup raised", extra=fields(delivery_id=delivery.delivery_id))
            known = SendResult.failed(ErrorClass.TRANSIENT, "internal_error", repr(exc))
        answer = "taken" if known is not None and known.ok else "not_taken" if known is None else "unknown"
        metrics.SENDS_IN_DOUBT.labels(delivery.channel.value, answer).inc()
        SUMMARIES.log(logging.INFO, f"{delivery.channel.value}: sends in doubt asked about ({answer})")
        if known is None or known.ok:
            return known
        return SendResult.failed(
            ErrorClass.TRANSIENT, IN_DOUBT, f"not known whether it went out: {known.code} {known.reason}"
        )

    def _quota_exhausted(self, record: ConsumedRecord, dispatch: Dispatch, quota: SmsQuota) -> list[Write]:
        metrics.SMS_QUOTA_EXHAUSTED.inc()
        SUMMARIES.log(logging.INFO, "SMS not sent: a shop's balance is used up", shop_id=dispatch.shop_id)
        skipped = self._skipped(record, dispatch, QUOTA_EXHAUSTED)
        return [*skipped, quota.refusal((record.topic, record.partition), dispatch.shop_id)]

    def _after_send(
        self, record: ConsumedRecord, dispatch: Dispatch, result: SendResult, alongside: list[Write]
    ) -> list[Write]:
        """The outcome of a provider call, and the state writes that go with it (an SMS's charge
        settled, a code uncounted, a Mini Program acceptance spent)."""
        self._count(dispatch, result)
        previous = record.history
        if result.ok:
            outcome = delivery_outcome(
                dispatch,
                result,
                self.clock(),
                attempts=(previous.attempts if previous else 0) + 1,
                replayed=bool(previous and previous.replays),
            )
            account = dispatch.delivery.account
            announced = sent_record(outcome, account, self._sealed(dispatch))  # paired with its receipt
            sent = [Write(self.topics.receipts, *announced)] if announced else []
            health = self._health(dispatch, True, outcome.at)
            return [*self._ended(record, dispatch, outcome), *alongside, *sent, *health]
        if result.error_class is ErrorClass.UNREACHABLE:
            return [*self._unreachable(record, dispatch, result), *alongside]
        return [*self._after_failure(record, dispatch, result, previous), *alongside]

    def _health(self, dispatch: Dispatch, ok: bool, failing_from: datetime) -> list[Write]:
        """A webhook call's final outcome: what it does to its endpoint (nothing for a provider)."""
        if self.endpoints is None:
            return []
        return self.endpoints.after(dispatch, ok, failing_from, self.clock())

    def _unreachable(self, record: ConsumedRecord, dispatch: Dispatch, result: SendResult) -> list[Write]:
        """The person cannot be reached on this channel (unfollowed, no subscription, blocked): the
        delivery ends skipped with the reason, neither retried nor dead-lettered."""
        reason = result.reason or str(result.code)
        channel = dispatch.delivery.channel.value
        metrics.UNREACHABLE.labels(channel, reason).inc()
        SUMMARIES.log(logging.INFO, f"{channel}: recipients not reachable ({reason})")
        previous = record.history
        skipped = skipped_delivery(
            dispatch,
            reason,
            self.clock(),
            replayed=bool(previous and previous.replays),
            provider_code=result.code,
            attempts=(previous.attempts if previous else 0) + 1,
        )
        return self._ended(record, dispatch, skipped, unreachable=True)

    def _opened(self, dispatch: Dispatch) -> Dispatch:
        """The dispatch with its recipient's address opened (the send topics carry it sealed);
        ValueError when it cannot be (the recipient key changed, or is not configured here)."""
        address = dispatch.delivery.recipient
        if not is_sealed(address):
            return dispatch
        if self.recipient_key is None:
            raise ValueError("the recipient's address is sealed and MALL_NOTIFY_RECIPIENT_KEY is not set")
        delivery = replace(dispatch.delivery, recipient=unseal(self.recipient_key, address))
        return replace(dispatch, delivery=delivery)

    def _sealed(self, dispatch: Dispatch) -> str | None:
        """An SMS's phone number, sealed, so that its report can be asked of Aliyun if it never comes."""
        if self.recipient_key is None or dispatch.delivery.channel is not ChannelName.ALIYUN_SMS:
            return None
        return seal(self.recipient_key, dispatch.delivery.recipient)

    def _after_failure(
        self, record: ConsumedRecord, dispatch: Dispatch, result: SendResult, previous: Failure | None
    ) -> list[Write]:
        now = self.clock()
        delivery = dispatch.delivery
        reason, detail = str(result.error_class), result.reason or ""
        failure = (
            previous.again(
                reason=reason,
                detail=detail,
                at=now,
                error_class=result.error_class,
                provider_code=result.code,
            )
            if previous
            else Failure(
                stage=Stage.SEND,
                reason=reason,
                detail=detail,
                origin=record.source,
                first_failed_at=now,
                last_failed_at=now,
                event_id=dispatch.event_id,
                delivery_id=delivery.delivery_id,
                error_class=result.error_class,
                provider_code=result.code,
            )
        )
        retry = self.topics.spec.retry
        decision = decide(
            result,
            failure.attempts,
            retry.tiers,
            unknown_code_max_retries=retry.unknown_code_max_retries,
            jitter=retry.jitter,
            now=now,
            rand=self.rand(),
        )
        if isinstance(decision, GiveUp):
            failure = self.fitting(record, failure.model_copy(update={"reason": decision.reason}))
            outcome = delivery_outcome(
                dispatch, result, now, attempts=failure.attempts, replayed=bool(failure.replays)
            )
            health = (
                self.endpoints.after(dispatch, False, failure.first_failed_at, now) if self.endpoints else []
            )
            return [
                self.dead_letter(record, failure),
                *self._ended(record, dispatch, outcome),
                *health,
            ]
        scheduled = failure.model_copy(update={"due_at": decision.due_at})
        metrics.RETRIES_SCHEDULED.labels(delivery.channel.value, decision.tier.name).inc()
        channel = delivery.channel.value
        SUMMARIES.log(logging.INFO, f"{channel}: retries scheduled ({decision.tier.name})", code=result.code)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "retry scheduled",
                extra=fields(
                    delivery_id=delivery.delivery_id,
                    event_id=dispatch.event_id,
                    channel=channel,
                    tier=decision.tier.name,
                    attempts=failure.attempts,
                    code=result.code,
                    due_at=decision.due_at.isoformat(),
                ),
            )
        topic = self.topics.retry_topic(delivery.channel, decision.tier)
        return [Write(topic, record.key, record.value, scheduled.headers())]

    def _count(self, dispatch: Dispatch, result: SendResult) -> None:
        delivery = dispatch.delivery
        metrics.DELIVERIES.labels(
            delivery.channel.value, "delivered" if result.ok else str(result.error_class)
        ).inc()
        if result.ok and dispatch.event_time is not None:
            waited = (self.clock() - dispatch.event_time).total_seconds()
            metrics.END_TO_END_SECONDS.labels(delivery.channel.value).observe(max(waited, 0.0))
        if result.unknown_code:
            channel = delivery.channel.value
            metrics.UNKNOWN_PROVIDER_CODES.labels(
                channel, metrics.unknown_code_label(channel, str(result.code))
            ).inc()
        if not result.ok and result.error_class is not ErrorClass.UNREACHABLE:
            SUMMARIES.log(
                logging.INFO,
                f"{delivery.channel.value}: sends failed ({result.error_class}, {result.code})",
                reason=result.reason,
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "sent" if result.ok else "send failed",
                extra=fields(
                    event_id=dispatch.event_id,
                    delivery_id=delivery.delivery_id,
                    shop_id=dispatch.shop_id,
                    scene=dispatch.scene,
                    channel=delivery.channel.value,
                    recipient=delivery.recipient,
                    code=result.code,
                    reason=result.reason,
                ),
            )

    async def _send(self, delivery: Delivery) -> SendResult:
        started = time.perf_counter()
        try:
            return await self.channel.send(delivery)
        except Exception as exc:  # a channel bug: classify it, never let it out
            log.exception("channel raised", extra=fields(delivery_id=delivery.delivery_id))
            return SendResult.failed(ErrorClass.TRANSIENT, "internal_error", repr(exc))
        finally:
            metrics.SEND_SECONDS.labels(delivery.channel.value).observe(time.perf_counter() - started)


class SenderLane(StatefulLane):
    stage: SenderStage

    def __init__(
        self, name: str, config: LaneConfig, stage: SenderStage, transactions: Transactions, concurrency: int
    ) -> None:
        super().__init__(name, config, transactions)
        self.stage = stage
        stage.commit_first = self._commit_first
        self.concurrency = concurrency
        self._busy = 0
        self._freed = asyncio.Event()
        self._tasks: dict[Partition, set[asyncio.Task[None]]] = {}
        self._last_of_key: dict[tuple[Partition, bytes | None], asyncio.Task[None]] = {}
        self._crash: BaseException | None = None

    def stores(self) -> list[Store]:
        subscriptions = self.stage.subscriptions
        return [*super().stores(), *([subscriptions.store] if subscriptions is not None else [])]

    async def room(self, stopping: asyncio.Event) -> int:
        """Free slots. A nearly full lane lets a few more deliveries finish first, so that it takes
        records in batches rather than one per finished delivery."""
        while self._busy >= self.concurrency and not stopping.is_set():
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.wait_seconds):
                    await self._freed.wait()
        if self.concurrency - self._busy < self.concurrency // TAKE_FRACTION:
            await asyncio.sleep(BATCH_WAIT_SECONDS)
        if self._crash is not None:
            raise RuntimeError(f"{self.name}: a delivery could not be handled") from self._crash
        await self.transactions.room()
        return 0 if stopping.is_set() else self.concurrency - self._busy

    async def handle(self, records: list[ConsumedRecord]) -> None:
        for record in records:
            partition = (record.topic, record.partition)
            chain = (partition, record.key)
            task = asyncio.create_task(self._deliver(record, self._last_of_key.get(chain)))
            self._busy += 1
            self._last_of_key[chain] = task
            self._tasks.setdefault(partition, set()).add(task)
            task.add_done_callback(partial(self._finished, partition=partition, chain=chain))

    async def _commit_first(self, record: ConsumedRecord, writes: list[Write]) -> None:
        """Commit writes of a record in flight now; NotOwned when its partition was lost meanwhile."""
        self.transactions.hand(self, record, writes)
        await self.transactions.commit_now()
        if not self.owns((record.topic, record.partition)):
            raise NotOwned((record.topic, record.partition))

    async def _deliver(self, record: ConsumedRecord, before: asyncio.Task[None] | None) -> None:
        """One delivery, after the one routed before it with the same key."""
        if before is not None:
            await asyncio.wait([before])
        try:
            writes = await self.stage.handle(record)
        except NotOwned:
            return  # the partition was lost meanwhile: its new owner handles the record
        except Exception as exc:  # a bug: the record must not be lost; the lane restarts and reads it again
            log.exception(
                "delivery failed unexpectedly", extra=fields(lane=self.name, source=str(record.source))
            )
            self._crash = exc
            return
        self.finish(record, writes)

    def _finished(
        self, task: asyncio.Task[None], partition: Partition, chain: tuple[Partition, bytes | None]
    ) -> None:
        self._busy -= 1
        self._freed.set()
        self._tasks.get(partition, set()).discard(task)
        if self._last_of_key.get(chain) is task:
            del self._last_of_key[chain]

    async def _finish(self, tasks: set[asyncio.Task[None]]) -> None:
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.config.drain_seconds)
        for task in late:
            task.cancel()
        if late:
            log.warning("deliveries cancelled", extra=fields(lane=self.name, count=len(late)))

    async def revoking(self, partitions: list[Partition]) -> None:
        await self._finish({task for partition in partitions for task in self._tasks.get(partition, ())})

    async def drain(self) -> None:
        await self._finish({task for tasks in self._tasks.values() for task in tasks})

    async def assigned(self, partitions: list[Partition]) -> None:
        await super().assigned(partitions)
        if self.stage.quota is not None:
            await self.stage.quota.restore(partitions)

    def released(self, partitions: list[Partition]) -> None:
        super().released(partitions)
        for partition in partitions:
            self._tasks.pop(partition, None)


IN_DOUBT = "in_doubt"
"""the code of a delivery in doubt whose provider could not be asked whether it went out"""
UNCERTAIN_CODES = frozenset({"timeout", "connection", "sdk_error", "bad_reply", "internal_error", IN_DOUBT})
"""failures that are no answer from the provider: the message may have gone out all the same"""
REPEAT_REFUSALS = frozenset({"isv.BUSINESS_LIMIT_CONTROL"})
"""what a provider answers to a repeat of a message it took moments ago"""


def _in_doubt(record: ConsumedRecord) -> bool:
    """Whether the delivery's last attempt may have gone out unseen (a timeout, say)."""
    previous = record.history
    return previous is not None and previous.provider_code in UNCERTAIN_CODES


def _surely_not_sent(result: SendResult) -> bool:
    """Whether the provider answered that it did not send the message (so it is not paid for)."""
    return not result.ok and result.code not in UNCERTAIN_CODES
