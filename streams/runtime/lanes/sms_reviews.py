"""Aliyun's reviews taking effect by themselves: the reviews lane and its poller.

The **reviews lane** (``sms-reviews`` in ``MALL_NOTIFY_LANES``, consumer group
``<app id>.sms-reviews``) reads ``notify.sms.reviews``: Aliyun's SignSmsReport /
TemplateSmsReport pushes (written there by the receipts endpoint) and what the poller asked. For a
report about something a shop has in review it writes, in the transaction that moves its offset,
the shop's new settings, their history line (who: ``aliyun``), and ``sms_review.finished`` for the
seller (scene ``seller_sms_review_finished``). Workers route with the new settings within
seconds: an approved signature or template is sent from then on, no one having listed anything.

The **poller** runs beside the lane, on the worker that owns the topic's one partition (so one
worker of the group asks Aliyun, whatever their number). Every
``MALL_NOTIFY_SMS_REVIEW_POLL_SECONDS`` it looks for what the shops have in review and, when
something is, asks Aliyun (QuerySmsSignList and QuerySmsTemplateList, a page of 50 at a time up to
``MALL_NOTIFY_SMS_REVIEW_POLL_PAGES``; QuerySmsQualificationRecord per qualification, at most
:data:`QUALIFICATIONS_PER_SECOND` a second); a review that ended is written to the topic like a
push. When Aliyun refuses or does not answer it waits twice as long each time, up to
:data:`MAX_BACKOFF_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Literal

from aiolimiter import AsyncLimiter
from pydantic import ValidationError

from channels.aliyun_review import AliyunSmsReview, Review
from channels.aliyun_sms import AliyunCallFailed
from streams.core.failures import Stage
from streams.core.settings_history import history_record, settings_change
from streams.core.shop_records import ShopTable, settings_record
from streams.core.shops import ShopRules
from streams.core.sms_review_reports import (
    REVIEW_FINISHED_TYPE,
    ReviewReport,
    action,
    apply_report,
    finished_event,
    holder,
    in_review,
    parse_report,
)
from streams.core.topics import Topics
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.publisher import Publisher
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import Lane, LaneConfig
from streams.runtime.lanes.stage import Clock, PipelineStage, utc_now
from streams.runtime.lanes.stateful_lane import LoadedFirstLane

log = get_logger("sms_reviews")
audit = get_logger("audit")
WHO = "aliyun"
INVALID_REPORT = "invalid_review_report"
QUALIFICATIONS_PER_SECOND = 5
MAX_BACKOFF_SECONDS = 300.0


class ReviewsStage(PipelineStage):
    stage = Stage.ROUTE

    def __init__(self, topics: Topics, shops: ShopTable, clock: Clock = utc_now) -> None:
        super().__init__(topics, None, clock)
        self.shops = shops
        self._written: dict[int, tuple[ShopRules, ShopRules]] = {}
        """per shop: the settings the table had when this lane wrote, and what it wrote (until the
        table reads it back, a second report of the shop builds on what was written)"""

    def current(self) -> Iterator[ShopRules]:
        for shop in list(self.shops.values()):
            based_on, wrote = self._written.get(shop.shop_id, (None, None))
            if wrote is not None and based_on == shop:
                yield wrote
                continue
            self._written.pop(shop.shop_id, None)
            yield shop

    def handle(self, record: ConsumedRecord) -> list[Write]:
        try:
            report = parse_report(record.value)
        except ValidationError as exc:
            return self.dead_lettered(record, INVALID_REPORT, str(exc).splitlines()[0][:300])
        shop = holder(self.current(), report)
        now = self.clock()
        changed = apply_report(shop, report, now) if shop is not None else None
        if shop is None or changed is None or changed == shop:
            metrics.SMS_REVIEWS_APPLIED.labels("unchanged").inc()
            return []  # nobody has it in review (any more), or Aliyun still reviews it
        metrics.SMS_REVIEWS_APPLIED.labels("changed").inc()
        base = self.shops.get(shop.shop_id)
        if base is not None:
            self._written[shop.shop_id] = (base, changed)
        change = settings_change(shop, changed, WHO, action(report), now)
        audit.info("settings changed", extra=change.model_dump(mode="json", exclude={"at"}))
        writes = [
            Write(self.topics.settings, *settings_record(changed)),
            Write(self.topics.settings_history, *history_record(change)),
        ]
        topic = self.topics.event_topic_for(REVIEW_FINISHED_TYPE)
        if topic is not None and report.status != "reviewing":
            _, event = finished_event(changed, report, now)
            writes.append(Write(topic, str(changed.shop_id).encode(), event))
        return writes


class ReviewsLane(LoadedFirstLane):
    """Reads no report before the shops' settings are loaded (``ready``)."""

    stage: ReviewsStage

    def __init__(
        self, config: LaneConfig, stage: ReviewsStage, transactions: Transactions, *, ready: asyncio.Event
    ) -> None:
        super().__init__("sms-reviews", config, transactions, batch=50, ready=ready)
        self.stage = stage

    async def handle(self, records: list[ConsumedRecord]) -> None:
        for record in records:
            self.finish(record, self.stage.handle(record))


class ReviewPoller:
    """Asks Aliyun for what the shops still have in review (see the module's doc)."""

    def __init__(
        self,
        lane: Lane,
        topics: Topics,
        shops: ShopTable,
        aliyun: AliyunSmsReview,
        publisher: Publisher,
        interval_seconds: float,
        pages: int,
    ) -> None:
        self.lane, self.topics, self.shops = lane, topics, shops
        self.aliyun, self.publisher = aliyun, publisher
        self.interval, self.pages = interval_seconds, pages
        self._limiter = AsyncLimiter(QUALIFICATIONS_PER_SECOND, 1.0)

    async def run(self, stopping: asyncio.Event) -> None:
        self.publisher.start()
        wait = self.interval
        try:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=wait)
                if stopping.is_set() or not self.lane.owns((self.topics.sms_reviews, 0)):
                    continue
                wait = await self._round(wait)
        finally:
            await self.publisher.close(wait_seconds=5.0)

    async def _round(self, wait: float) -> float:
        """One round; the wait before the next."""
        try:
            reports = await self.poll()
        except AliyunCallFailed as failed:
            metrics.SMS_REVIEW_POLLS.labels("failed").inc()
            backoff = min(wait * 2, MAX_BACKOFF_SECONDS)
            log.warning(
                "Aliyun's reviews could not be asked",
                extra=fields(code=failed.result.code, reason=failed.result.reason, retry_in_seconds=backoff),
            )
            return backoff
        metrics.SMS_REVIEW_POLLS.labels("ok" if reports is not None else "idle").inc()
        if reports:
            metrics.SMS_REVIEW_REPORTS.labels("poll").inc(len(reports))
            writes = [Write(self.topics.sms_reviews, r.key(), r.value()) for r in reports]
            errors = await self.publisher.write(writes)
            if any(error is not None for error in errors):
                log.warning(
                    "review reports not written: asked again next round", extra=fields(reports=len(writes))
                )
        return self.interval

    async def poll(self) -> list[ReviewReport] | None:
        """The reviews that ended of what the shops have in review (None: nothing is in review)."""
        wanted = {item for shop in self.shops.values() for item in in_review(shop)}
        if not wanted:
            return None
        reports: list[ReviewReport] = []
        signatures = {name for kind, name in wanted if kind == "signature"}
        if signatures:
            listed = await self.aliyun.signatures(self.pages)
            reports += _ended("signature", {n: r for n, r in listed.items() if n in signatures})
        templates = {name for kind, name in wanted if kind == "template"}
        if templates:
            listed = await self.aliyun.templates(self.pages)
            reports += _ended("template", {c: r for c, r in listed.items() if c in templates})
        for name in sorted(name for kind, name in wanted if kind == "qualification"):
            async with self._limiter:
                answer = await self.aliyun.qualification(name)
            if answer is not None and answer.status != "reviewing":
                reports.append(
                    ReviewReport(
                        kind="qualification",
                        name=name,
                        status=answer.status,
                        reason=answer.reason,
                        source="poll",
                    )
                )
        return reports


def _ended(kind: Literal["signature", "template"], reviews: dict[str, Review]) -> list[ReviewReport]:
    return [
        ReviewReport(kind=kind, name=name, status=review.status, reason=review.reason, source="poll")
        for name, review in reviews.items()
        if review.status != "reviewing"
    ]
