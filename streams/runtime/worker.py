"""The faust worker: agents that feed Kafka records to the stages, and the ``/metrics`` page.

The agents are thin on purpose. Per faust's behaviour (an exception escaping an agent marks the
record processed and its offset is committed), every record is handled inside
:func:`handle_until_done`, which only returns once the record's results are acknowledged by
Kafka: a failure there (e.g. the broker is unreachable) is retried with backoff, stalling the
partition visibly instead of losing the record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from channels.aliyun_sms import AliyunSmsConfig
from channels.limits import Limits
from channels.registry import Channels, ChannelsConfig
from streams.core.catalog import load_catalog
from streams.core.topics import Topics, load_topics
from streams.logs import fields, get_logger, logging_config
from streams.runtime import metrics
from streams.runtime.forwarder import RetryForwarder
from streams.runtime.kafka_publisher import KafkaPublisher
from streams.runtime.ledger import OutcomeLedger
from streams.runtime.sending import SenderStage
from streams.runtime.shop_table import SettingsView
from streams.runtime.stages import ConsumedRecord, RouterStage
from streams.runtime.topic_view import TopicView
from streams.settings import Settings

log = get_logger("worker")
MAX_BACKOFF_SECONDS = 30.0


def consumed(message: Any) -> ConsumedRecord:
    headers = message.headers or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    return ConsumedRecord(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        [(name, bytes(value)) for name, value in headers],
    )


async def handle_until_done(
    stage: str, handle: Callable[[ConsumedRecord], Awaitable[None]], record: ConsumedRecord
) -> None:
    """Run ``handle``; on an unexpected error retry it (with backoff) until it succeeds."""
    delay = 0.5
    while True:
        try:
            await handle(record)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            metrics.HANDLER_RETRIES.labels(stage).inc()
            log.exception("handling failed, will retry", extra=fields(stage=stage, source=str(record.source)))
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)


def channels_config(settings: Settings) -> ChannelsConfig:
    """The channels' configuration, from the worker's settings."""
    aliyun = None
    if settings.aliyun_access_key_id:
        aliyun = AliyunSmsConfig(
            access_key_id=settings.aliyun_access_key_id,
            access_key_secret=settings.aliyun_access_key_secret,
            endpoint=settings.aliyun_sms_endpoint,
            protocol=settings.aliyun_sms_protocol,
            connect_timeout_ms=int(settings.http_connect_timeout * 1000),
            read_timeout_ms=int(settings.http_total_timeout * 1000),
        )
    return ChannelsConfig(
        wechat_oa_api_base=str(settings.wechat_oa_api_base),
        wechat_mp_api_base=str(settings.wechat_mp_api_base),
        wechat_secrets=settings.wechat_secrets,
        mini_program_state=settings.wechat_mp_state,
        wechat_limits=Limits(settings.wechat_app_concurrency, settings.wechat_app_rate_per_second),
        aliyun_sms=aliyun,
        timeout=aiohttp.ClientTimeout(
            total=settings.http_total_timeout, connect=settings.http_connect_timeout
        ),
    )


def retry_routes(topics: Topics, channels: Channels) -> dict[str, str]:
    """Every retry topic of a configured channel, and the send topic its records go back to."""
    return {
        topics.retry_topic(channel, tier): topics.send_topic(channel)
        for channel in channels.by_name
        for tier in topics.spec.retry.tiers
    }


def create_app(settings: Settings, topics: Topics | None = None) -> faust.App:
    """The faust app with its agents and pages, ready for ``faust.Worker``."""
    topics = topics or load_topics(settings.config_dir / "topics.yaml", settings.topic_prefix)
    catalog = load_catalog(settings.config_dir / "catalog.yaml")
    shops = SettingsView(settings.kafka_bootstrap_servers, topics.settings, catalog)
    app_id = settings.topic_prefix + settings.app_id
    app = faust.App(
        app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")],
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=settings.kafka_session_timeout / 10,
        logging_config=logging_config(settings.log_level),
    )
    publisher = KafkaPublisher(settings.kafka_bootstrap_servers)
    ledger = OutcomeLedger(
        settings.kafka_bootstrap_servers, topics.outcomes, publisher, settings.ledger_ttl_hours * 3600
    )
    router = RouterStage(topics, catalog, shops, publisher, ledger)
    channels = Channels(channels_config(settings))
    sender = SenderStage(topics, channels.by_name, publisher, ledger)
    forwarder = RetryForwarder(
        settings.kafka_bootstrap_servers, f"{app_id}-retry", retry_routes(topics, channels)
    )
    _register_agents(app, topics, router, sender, [shops.view, ledger.view])
    _register_pages(app, [shops.view, ledger.view], shops)

    async def announce() -> None:
        log.info(
            "worker started",
            extra=fields(
                event_topics=topics.event_topics,
                send_topics=list(map(topics.send_topic, channels.by_name)),
                metrics=f"http://{settings.web_host}:{settings.web_port}/metrics",
            ),
        )

    app.task(announce)
    app.task(shops.view.run)
    app.task(ledger.view.run)
    app.task(forwarder.run)

    @app.on_before_shutdown.connect
    async def close_channels(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await forwarder.stop()
        await ledger.view.stop()
        await shops.view.stop()
        await channels.close()
        await publisher.stop()

    return app


def _register_agents(
    app: faust.App, topics: Topics, router: RouterStage, sender: SenderStage, views: list[TopicView]
) -> None:
    events = app.topic(*topics.event_topics, key_serializer="raw", value_serializer="raw")
    send_topics = [topics.send_topic(channel) for channel in sender.channels]
    deliveries = app.topic(*send_topics, key_serializer="raw", value_serializer="raw")

    @app.agent(events, name="router")
    async def route_events(stream: faust.StreamT[Any]) -> None:
        for view in views:
            await view.wait_ready()
        async for event in stream.events():
            await handle_until_done("route", router.handle, consumed(event.message))

    @app.agent(deliveries, name="sender")
    async def send_deliveries(stream: faust.StreamT[Any]) -> None:
        for view in views:  # never route or send before knowing the settings and what was delivered
            await view.wait_ready()
        async for event in stream.events():
            await handle_until_done("send", sender.handle, consumed(event.message))


class MetricsView(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def _register_pages(app: faust.App, views: list[TopicView], shops: SettingsView) -> None:
    class ReadyView(View):
        """200 once the worker holds partitions and has loaded settings and ledger; 503 until then."""

        async def get(self, request: Request) -> Response:
            assigned = self.app.consumer.assignment() if self.app.consumer else set()
            loaded = {view.topic: view.is_ready for view in views}
            ready = bool(assigned) and not self.app.rebalancing and all(loaded.values())
            body = {"ready": ready, "partitions": len(assigned), "loaded": loaded}
            return self.json(body, status=200 if ready else 503)

    class ShopSettingsView(View):
        """The settings this worker routes a shop's events with (they follow the settings topic)."""

        async def get(self, request: Request, shop_id: str) -> Response:
            shop = shops.get(int(shop_id)) if shop_id.isdigit() else None
            if shop is None:
                return self.json({"problems": [f"shop {shop_id} has no settings"]}, status=404)
            return self.json(shop.model_dump(mode="json"))

    app.page("/metrics")(MetricsView)
    app.page("/readyz")(ReadyView)
    app.page("/shops/{shop_id}/settings")(ShopSettingsView)
