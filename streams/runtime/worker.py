"""The worker: a router lane, a sender lane per configured channel, the retry forwarder, the
shops' settings and the pages, in one asyncio process with one (transactional) Kafka producer.

Everything runs under supervisors: a task that crashes is restarted. The first SIGTERM (or SIGINT)
stops the lanes taking records, lets records in flight finish for up to
``MALL_NOTIFY_SHUTDOWN_GRACE_SECONDS``, commits, leaves the groups and exits; whatever still hangs
then (a consumer closing against an unreachable cluster) is cut off a few seconds later, so a stop
always ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

from channels.aliyun_review import AliyunSmsReview
from channels.aliyun_sms import AliyunKeys, AliyunSmsConfig, AliyunSmsDetails
from channels.base import Channel, ChannelName
from channels.limits import Limits
from channels.registry import Channels, ChannelsConfig
from streams.core.buyer_choices import PREFERENCES_TYPE
from streams.core.catalog import Catalog, load_catalog
from streams.core.codes import CodeRules
from streams.core.credentials import WeChatSecrets
from streams.core.errors import MallNotifyError
from streams.core.low_balance import LOW_BALANCE_TYPE, shop_bands
from streams.core.render_plan import ShopPlan, compile_shop
from streams.core.routing import Router
from streams.core.shop_records import ShopTable
from streams.core.sms_quota import AccountBook
from streams.core.tokens import Tokens
from streams.core.topics import Topics, load_topics
from streams.core.webhooks import EndpointTable
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.aliyun_keys import aliyun_keys
from streams.runtime.clock import ShiftedClock
from streams.runtime.health import BrokerProbe, Readiness
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.lag import EndOffsets
from streams.runtime.kafka.publisher import Publisher
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.buyers import (
    CHAINS,
    CHAINS_TTL_SECONDS,
    CHOICES,
    CHOICES_TTL_SECONDS,
    COUNTS,
    COUNTS_TTL_SECONDS,
    BuyersLane,
    BuyerStage,
    BuyerState,
)
from streams.runtime.lanes.code_limits import SENDS, CodeLimits
from streams.runtime.lanes.forwarder import ForwarderLane
from streams.runtime.lanes.lane import Lane, LaneConfig
from streams.runtime.lanes.ledger import Ledger
from streams.runtime.lanes.receipts import ReceiptsLane, ReceiptsStage
from streams.runtime.lanes.report_fallback import ReportFallback
from streams.runtime.lanes.router import RouterLane, RouterStage
from streams.runtime.lanes.send_log import SendLogLane
from streams.runtime.lanes.sender import SenderLane, SenderStage
from streams.runtime.lanes.sms_account import SmsQuota
from streams.runtime.lanes.sms_reviews import ReviewPoller, ReviewsLane, ReviewsStage
from streams.runtime.lanes.stage import RetryStage, utc_now
from streams.runtime.lanes.subscriptions import Subscriptions
from streams.runtime.lanes.webhooks import EndpointHealth, WebhookLane, WebhookStage
from streams.runtime.state.store import Disk, Store, identity, lock_directory
from streams.runtime.supervisor import Supervisor
from streams.runtime.web import pages
from streams.settings import Settings

log = get_logger("worker")
CUT_OFF_SECONDS = 10.0
"""How long after the grace period a stop that still hangs is cut off."""
FINAL_COMMIT_SECONDS = 5.0


def channels_config(
    settings: Settings,
    credentials: TableFollower,
    secrets: WeChatSecrets,
    aliyun: AliyunKeys | AliyunSmsConfig | None,
) -> ChannelsConfig:
    """The channels' configuration, from the worker's settings, the WeChat apps' ``secrets`` as
    ``credentials`` follows them and where the Aliyun clients find the AccessKey."""
    return ChannelsConfig(
        wechat_oa_api_base=str(settings.wechat_oa_api_base),
        wechat_mp_api_base=str(settings.wechat_mp_api_base),
        wechat_secrets=secrets,
        secrets_loaded=credentials.loaded,
        mini_program_state=settings.wechat_mp_state,
        wechat_limits=Limits(settings.wechat_app_concurrency, settings.wechat_app_rate_per_second),
        aliyun_sms=aliyun,
        webhook_key=settings.recipient_key.get_secret_value().encode() if settings.recipient_key else None,
        webhook_allowed_hosts=frozenset(settings.webhook_allowed_hosts),
        timeout=aiohttp.ClientTimeout(
            total=settings.http_total_timeout, connect=settings.http_connect_timeout
        ),
    )


@dataclass
class Worker:
    settings: Settings
    topics: Topics
    transactions: Transactions
    channels: Channels
    shops: ShopTable
    follower: TableFollower
    lanes: list[Lane]
    probe: BrokerProbe
    services: Supervisor
    """the transactions, the broker probe and the settings: started first, stopped last"""
    lane_tasks: Supervisor
    tokens: Tokens
    """who may read the shop pages (the platform)"""
    ends: EndOffsets
    """where the owned partitions end: the lanes' lag"""
    accounts: TableFollower | None = None
    """the SMS balances (purchases, other workers' charges), when this worker sends SMS"""
    reports: ReportFallback | None = None
    """asks Aliyun for the SMS reports that did not come, when this worker pairs receipts"""
    sms_bands: Callable[[], Counter[str]] | None = None
    """how many shops' SMS balances are used up, low, ok (when this worker follows them)"""
    send_log: SendLogLane | None = None
    """the outcomes into PostgreSQL (when a database is configured)"""
    endpoints: TableFollower | None = None
    """the merchants' webhook endpoints (when this worker makes or sends webhook calls)"""
    review_poller: ReviewPoller | None = None
    """asks Aliyun about the reviews no push told of (with the reviews lane, when Aliyun is configured)"""
    credentials: TableFollower | None = None
    """the merchants' WeChat apps, registered at run time, with their sealed secrets"""

    @property
    def readiness(self) -> Readiness:
        return Readiness(
            [self.services, self.lane_tasks],
            self.lanes,
            self.follower,
            self.probe,
            self.transactions,
            self.settings.stall_seconds,
            [channel.value for channel in self.channels.off],
            self.sms_bands,
        )


def build_worker(settings: Settings, topics: Topics | None = None, catalog: Catalog | None = None) -> Worker:
    """Every part of a worker, nothing started (ConfigError / TopicsError for bad files or tokens)."""
    topics = topics or load_topics(settings.config_dir / "topics.yaml", settings.topic_prefix)
    catalog = catalog or load_catalog(settings.config_dir / "catalog.yaml")
    # the merchants' WeChat apps and the AccessKey registered at run time (the development seed under them)
    secrets = WeChatSecrets(settings.secret_box(), settings.wechat_secrets)
    credentials = TableFollower(
        settings.kafka_bootstrap_servers, topics.credentials, secrets, what="WeChat apps"
    )
    aliyun = aliyun_keys(settings, secrets)  # one for every Aliyun client: a key's configuration built once
    channels = Channels(channels_config(settings, credentials, secrets, aliyun))
    secrets.on_change = channels.forget_token
    plans: dict[int, ShopPlan] = {}
    shops = ShopTable(catalog)

    def recompile(shop_id: int) -> None:
        shop = shops.get(shop_id)
        if shop is None:
            plans.pop(shop_id, None)
        else:
            plans[shop_id] = compile_shop(shop, catalog)

    follower = TableFollower(settings.kafka_bootstrap_servers, topics.settings, shops, recompile)
    book = AccountBook()
    accounts = TableFollower(settings.kafka_bootstrap_servers, topics.sms_account, book, what="SMS accounts")
    quota = SmsQuota(book, topics.sms_account, accounts, shops.get, topics.event_topic_for(LOW_BALANCE_TYPE))
    transactions = Transactions(
        settings.kafka_bootstrap_servers, _group(settings), identity=identity(settings.state_dir)
    )
    disk = Disk(settings.state_dir, cache_bytes=settings.state_cache_mb << 20)
    endpoints = EndpointTable()
    endpoint_follower = TableFollower(
        settings.kafka_bootstrap_servers, topics.webhooks, endpoints, what="webhook endpoints"
    )
    clock = ShiftedClock(settings.clock_file) if settings.clock_file else None
    if clock is not None:
        log.warning(
            "the buyers' clock follows a clock file: demos and tests only",
            extra=fields(file=str(settings.clock_file)),
        )
    parts = _Parts(settings, topics, transactions, quota, disk, endpoints, shops, clock)
    router = None
    if settings.runs("router"):
        key = settings.recipient_key.get_secret_value().encode() if settings.recipient_key else None
        router = parts.router(Router(catalog, key), plans, follower.loaded)
    lanes = _lanes(parts, router, channels, endpoint_follower.loaded, follower.loaded)
    probe = BrokerProbe(partial(parts.transactions.ask_about, topics.settings))
    follows_accounts = any(_follows_accounts(lane) for lane in lanes)
    return Worker(
        settings,
        topics,
        parts.transactions,
        channels,
        shops,
        follower,
        lanes,
        probe,
        Supervisor(),
        Supervisor(),
        Tokens.configured(settings.api_platform_token, {}),
        EndOffsets(settings.kafka_bootstrap_servers, lanes),
        accounts if follows_accounts else None,
        _report_fallback(settings, lanes, aliyun),
        partial(shop_bands, book, shops.get) if follows_accounts else None,
        _send_log(settings, topics),
        endpoint_follower if settings.runs("webhooks") or settings.runs("send.webhook") else None,
        _review_poller(settings, topics, shops, lanes, aliyun),
        credentials,
    )


def _review_poller(
    settings: Settings,
    topics: Topics,
    shops: ShopTable,
    lanes: list[Lane],
    aliyun: AliyunKeys | AliyunSmsConfig | None,
) -> ReviewPoller | None:
    lane = next((lane for lane in lanes if isinstance(lane, ReviewsLane)), None)
    if lane is None or aliyun is None or settings.sms_review_poll_seconds == 0:
        return None
    return ReviewPoller(
        lane,
        topics,
        shops,
        AliyunSmsReview(aliyun),
        Publisher(settings.kafka_bootstrap_servers),
        settings.sms_review_poll_seconds,
        settings.sms_review_poll_pages,
    )


def _lanes(
    parts: _Parts,
    router: Lane | None,
    channels: Channels,
    endpoints_loaded: asyncio.Event,
    settings_loaded: asyncio.Event,
) -> list[Lane]:
    """The lanes this worker runs (MALL_NOTIFY_LANES), the router first."""
    settings = parts.settings
    lanes: list[Lane] = [router] if router is not None else []
    if settings.runs("buyers"):
        lanes.append(parts.buyers())
    lanes += [
        parts.sender(name, channel)
        for name, channel in channels.by_name.items()
        if settings.runs(f"send.{name.value}")
    ]
    if settings.runs("send.codes"):
        lanes.append(parts.code_sender(channels.codes))
    if settings.runs("deferred"):
        lanes.append(parts.deferred())
    if settings.runs("retry"):
        lanes.append(parts.forwarder(list(channels.by_name)))
    if settings.runs("receipts"):
        lanes.append(parts.receipts())
    if settings.runs("webhooks"):
        lanes.append(parts.webhooks(endpoints_loaded))
    if settings.runs("sms-reviews"):
        lanes.append(parts.sms_reviews(settings_loaded))
    return lanes


def _follows_accounts(lane: Lane) -> bool:
    """SMS senders charge the shops' balances; the router applies the payments of their orders."""
    return isinstance(lane, RouterLane) or (isinstance(lane, SenderLane) and lane.stage.quota is not None)


def _send_log(settings: Settings, topics: Topics) -> SendLogLane | None:
    if not settings.runs("send-log") or settings.database_url is None:
        return None
    return SendLogLane(
        settings.kafka_bootstrap_servers,
        settings.database_url.get_secret_value(),
        topics.outcomes,
        f"{_group(settings)}.send-log",
        settings.send_log_keep_days,
        settings.kafka_session_timeout,
        identity(settings.state_dir),
        topics.event_topic_for(PREFERENCES_TYPE),
    )


def _report_fallback(
    settings: Settings, lanes: list[Lane], aliyun: AliyunKeys | AliyunSmsConfig | None
) -> ReportFallback | None:
    receipts = next((lane for lane in lanes if isinstance(lane, ReceiptsLane)), None)
    key = settings.recipient_key
    if receipts is None or aliyun is None or key is None:
        return None
    return ReportFallback(
        receipts.stage,
        AliyunSmsDetails(aliyun),
        Publisher(settings.kafka_bootstrap_servers),
        key.get_secret_value().encode(),
        settings.sms_report_wait_seconds,
        settings.sms_report_check_seconds,
    )


class PortInUse(MallNotifyError):
    """The worker's web port cannot be listened on."""


def _group(settings: Settings) -> str:
    return settings.topic_prefix + settings.app_id


@dataclass(frozen=True)
class _Parts:
    """Builds the lanes of one worker."""

    settings: Settings
    topics: Topics
    transactions: Transactions
    quota: SmsQuota
    disk: Disk
    endpoints: EndpointTable
    shops: ShopTable
    clock: ShiftedClock | None = None
    """the buyers' and deferred lanes' clock moved by MALL_NOTIFY_CLOCK_FILE (demos and tests)"""

    def store(self, name: str, consumed: list[str], **options: Any) -> Store:
        """The lane's store, with a changelog per consumed topic."""
        return Store(name, self.topics.ledgers(consumed), self.disk, self.ttl, **options)

    @property
    def ttl(self) -> float:
        return self.settings.ledger_ttl_hours * 3600

    def config(self, group_id: str, lane_topics: list[str], wait: float = 0.2) -> LaneConfig:
        settings = self.settings
        return LaneConfig(
            settings.kafka_bootstrap_servers,
            group_id,
            lane_topics,
            wait_seconds=wait,
            stall_seconds=settings.stall_seconds,
            drain_seconds=settings.shutdown_grace_seconds,
            session_timeout_seconds=settings.kafka_session_timeout,
            instance_id=identity(settings.state_dir),
        )

    def router(self, router: Router, plans: dict[int, ShopPlan], ready: asyncio.Event) -> RouterLane:
        events = self.topics.event_topics
        ledger = Ledger(self.store("router", events))
        stage = RouterStage(self.topics, router, plans, ledger, book=self.quota.book)
        config = self.config(_group(self.settings), events, wait=0.05)
        return RouterLane(
            config,
            stage,
            self.transactions,
            batch=self.settings.router_batch,
            ready=ready,
            accounts=self.quota.follower,
        )

    def sender(self, name: ChannelName, channel: Channel) -> SenderLane:
        lane = f"send.{name.value}"
        return self._sender(lane, self.store(lane, [self.topics.send_topic(name)]), channel, name)

    def subscriptions(self) -> Subscriptions:
        """What buyers accepted on the Mini Program: kept as long as WeChat honours it (no end)."""
        send = self.topics.send_topic(ChannelName.WECHAT_MP)
        changelogs = {send: self.topics.mp_subscriptions}
        return Subscriptions(
            Store("send.wechat_mp.subscriptions", changelogs, self.disk, ACCEPTANCE_TTL_SECONDS)
        )

    def code_sender(self, channel: Channel) -> SenderLane:
        """The verification codes' own lane (SMS): expiry and per-phone limits before sending."""
        rules = CodeRules(validity_seconds=self.settings.code_validity_seconds)
        ttls = {SENDS: rules.longest_window}
        store = self.store("send.codes", [self.topics.codes], ttls=ttls, tags=(0, SENDS))
        return self._sender("send.codes", store, channel, channel.name, CodeLimits(store, rules))

    def _sender(
        self, lane: str, store: Store, channel: Channel, name: ChannelName, codes: CodeLimits | None = None
    ) -> SenderLane:
        quota = self.quota if name is ChannelName.ALIYUN_SMS else None
        key = self.settings.recipient_key
        recipient_key = key.get_secret_value().encode() if key else None
        aliyun = self.settings.aliyun_sms() if name is ChannelName.ALIYUN_SMS else None
        stage = SenderStage(
            self.topics,
            channel,
            Ledger(store),
            codes=codes,
            quota=quota,
            recipient_key=recipient_key,
            lookup=AliyunSmsDetails(aliyun) if aliyun else None,
            subscriptions=self.subscriptions() if name is ChannelName.WECHAT_MP else None,
            endpoints=self.endpoint_health() if name is ChannelName.WEBHOOK else None,
        )
        config = self.config(f"{_group(self.settings)}.{lane}", list(store.changelogs))
        return SenderLane(lane, config, stage, self.transactions, self.settings.concurrency(name))

    def endpoint_health(self) -> EndpointHealth:
        disable_after = timedelta(seconds=self.settings.webhook_disable_after_seconds)
        return EndpointHealth(self.topics, self.endpoints, self.shops.get, disable_after)

    def webhooks(self, ready: asyncio.Event) -> WebhookLane:
        """Outcomes in, the merchants' webhook calls out (nothing kept: the calls are the output)."""
        key = self.settings.recipient_key
        stage = WebhookStage(self.topics, self.endpoints, key.get_secret_value().encode() if key else None)
        config = self.config(f"{_group(self.settings)}.webhooks", [self.topics.outcomes])
        return WebhookLane(config, stage, self.transactions, batch=self.settings.router_batch, ready=ready)

    def sms_reviews(self, ready: asyncio.Event) -> ReviewsLane:
        """Aliyun's review reports in, the shops' settings that follow them out (nothing kept)."""
        config = self.config(f"{_group(self.settings)}.sms-reviews", [self.topics.sms_reviews])
        return ReviewsLane(config, ReviewsStage(self.topics, self.shops), self.transactions, ready=ready)

    def buyers(self) -> BuyersLane:
        """Buyers' notices in, on to the send topics or skipped; each buyer's choices and counts kept."""
        changelogs = {self.topics.buyers: self.topics.buyer_state}
        ttls = {CHOICES: CHOICES_TTL_SECONDS, COUNTS: COUNTS_TTL_SECONDS, CHAINS: CHAINS_TTL_SECONDS}
        tags = (CHOICES, COUNTS, CHAINS)
        store = Store("buyers", changelogs, self.disk, COUNTS_TTL_SECONDS, ttls=ttls, tags=tags)
        stage = BuyerStage(self.topics, BuyerState(store), hours=self.clock.now if self.clock else None)
        config = self.config(f"{_group(self.settings)}.buyers", [self.topics.buyers])
        return BuyersLane(config, stage, self.transactions, batch=self.settings.router_batch)

    def receipts(self) -> ReceiptsLane:
        stage = ReceiptsStage(self.topics, self.disk, self.settings.receipt_ttl_hours * 3600)
        config = self.config(f"{_group(self.settings)}.receipts", [self.topics.receipts])
        return ReceiptsLane(config, stage, self.transactions, self.settings.receipt_overdue_minutes * 60)

    def deferred(self) -> ForwarderLane:
        """Notices held by quiet hours back to the buyers' topic, once their delay bucket's wait is over."""
        routes = {topic: self.topics.buyers for topic in self.topics.deferred}
        config = self.config(f"{_group(self.settings)}.deferred", self.topics.deferred)
        return ForwarderLane(
            config,
            routes,
            RetryStage(self.topics, None, utc_now),
            self.transactions,
            self.clock.time if self.clock else time.time,
            name="deferred",
            rate_per_second=self.settings.deferred_release_per_second,
            forwarded=metrics.DEFERRED_RELEASED,
            waiting=metrics.DEFERRED_WAITING,
        )

    def forwarder(self, channels: list[ChannelName]) -> ForwarderLane:
        routes = retry_routes(self.topics, channels)
        stage = RetryStage(self.topics, None, utc_now)
        config = self.config(f"{_group(self.settings)}.retry", sorted(routes))
        return ForwarderLane(config, routes, stage, self.transactions, send_topics=self.topics.send_topics)


ACCEPTANCE_TTL_SECONDS = 3 * 365 * 86400.0
"""a Mini Program acceptance left untouched this long is forgotten (WeChat sets it no end)"""


def retry_routes(topics: Topics, channels: list[ChannelName]) -> dict[str, str]:
    """Every retry topic of the configured channels -> the send topic its records go back to."""
    return {
        topics.retry_topic(channel, tier): topics.send_topic(channel)
        for channel in channels
        for tier in topics.spec.retry.tiers
    }


def _start_followers(worker: Worker) -> None:
    """The services only some workers need: the SMS accounts, the SMS reports, the webhook endpoints."""
    if worker.accounts is not None:
        worker.services.start("sms_accounts", worker.accounts.run)
    if worker.reports is not None:
        worker.services.start("sms_reports", worker.reports.run)
    if worker.endpoints is not None:
        worker.services.start("webhook_endpoints", worker.endpoints.run)
    if worker.review_poller is not None:
        worker.services.start("sms_review_poller", worker.review_poller.run)
    if worker.credentials is not None:
        worker.services.start("wechat_apps", worker.credentials.run)


async def run_worker(worker: Worker, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then stop within the grace period (plus a little)."""
    settings = worker.settings
    table = worker.endpoints.table if worker.endpoints is not None else None
    endpoints = table if isinstance(table, EndpointTable) else None
    runner = web.AppRunner(pages(worker.readiness, worker.shops, worker.tokens, endpoints), access_log=None)
    await runner.setup()
    try:  # first: a port in use is said before anything else starts
        await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    except OSError as exc:
        await runner.cleanup()
        raise PortInUse(
            f"MALL_NOTIFY_WEB_PORT={settings.web_port} on {settings.web_host}: {exc.strerror or exc}"
        ) from None
    worker.services.start("transactions", worker.transactions.run)
    worker.services.start("kafka_probe", worker.probe.run)
    worker.services.start("settings", worker.follower.run)
    worker.services.start("partition_ends", worker.ends.run)
    _start_followers(worker)
    for lane in worker.lanes:
        worker.lane_tasks.start(lane.name, lane.run)
    if worker.send_log is not None:
        worker.lane_tasks.start(worker.send_log.name, worker.send_log.run)

    log.info(
        "worker started",
        extra=fields(
            lanes=[lane.name for lane in worker.lanes],
            metrics=f"http://{settings.web_host}:{settings.web_port}/metrics",
            channels_off=[channel.value for channel in worker.channels.off] or None,
        ),
    )
    for channel in worker.channels.off:
        log.warning(
            "channel not configured: its deliveries are dead-lettered as channel_not_configured",
            extra=fields(channel=channel.value),
        )
    await stop.wait()
    log.info("stopping", extra=fields(grace_seconds=settings.shutdown_grace_seconds))
    cancelled = await worker.lane_tasks.stop(grace_seconds=settings.shutdown_grace_seconds)
    cancelled += await worker.services.stop(grace_seconds=FINAL_COMMIT_SECONDS)
    if cancelled:
        log.warning("tasks cut off at the end of the grace period", extra=fields(tasks=cancelled))
    await worker.channels.close()
    await runner.cleanup()
    log.info("worker stopped")


def serve(settings: Settings) -> int:
    """``mall-notify worker``: run until SIGTERM or SIGINT (StateDirInUse when another worker
    keeps its state in the same directory)."""
    held = lock_directory(settings.state_dir)
    worker = build_worker(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stopping(stop, settings.shutdown_grace_seconds))
        await run_worker(worker, stop)

    asyncio.run(main())
    held.close()
    return 0


def _stopping(stop: asyncio.Event, grace_seconds: float) -> Callable[[], None]:
    def on_signal() -> None:
        if stop.is_set():
            return
        stop.set()
        cut_off = threading.Timer(grace_seconds + CUT_OFF_SECONDS, _cut_off)
        cut_off.daemon = True
        cut_off.start()

    return on_signal


def _cut_off() -> None:
    log.error("the stop did not finish in time; exiting now")
    os._exit(1)
