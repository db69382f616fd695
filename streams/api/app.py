"""The admin API (aiohttp): the catalog, each shop's settings read and saved, and the SMS
business (:mod:`streams.api.sms`).

Every call but ``/openapi.json``, ``/healthz`` and ``/metrics`` needs ``Authorization: Bearer <token>``: the
platform's token reaches every shop, a shop's token only its own (401 without a valid token,
403 for another shop). Saved settings are validated first (422 lists every problem, each naming
its field) and written to the settings topic, which every worker follows: the next event uses them.
Every answer that is not a success is JSON ``{"problems": [...]}``; a body over 256 KiB is 413.
Requests are logged (access log) and every change is logged with who made it (audit log).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from channels.aliyun_review import AliyunSmsReview
from channels.base import ChannelName
from channels.http import SharedSession
from streams.api.bodies import SwitchRequest
from streams.api.context import (
    CONTEXT,
    MAX_BODY_BYTES,
    PUBLIC,
    SHOP_ID,
    WHO,
    ApiContext,
    Handler,
    SmsDesk,
    WebhookDesk,
    WeChatDesk,
    body_bytes,
    for_shop,
    log,
    problem,
    quote,
    read_body,
    save,
)
from streams.api.history import ROUTES as HISTORY_ROUTES
from streams.api.messages import ROUTES as MESSAGES_ROUTES
from streams.api.mp import ROUTES as MP_ROUTES
from streams.api.openapi import OPENAPI
from streams.api.platform_keys import ROUTES as PLATFORM_KEY_ROUTES
from streams.api.preferences import ROUTES as PREFERENCES_ROUTES
from streams.api.refusals import HANDLER_ARGS, problems_as_json
from streams.api.sms import ROUTES as SMS_ROUTES
from streams.api.sms_packages import ROUTES as SMS_PACKAGES_ROUTES
from streams.api.sms_papers import ROUTES as SMS_PAPERS_ROUTES
from streams.api.webhooks import ROUTES as WEBHOOK_ROUTES
from streams.api.wechat_apps import ROUTES as WECHAT_APPS_ROUTES
from streams.core.buyer_choices import PREFERENCES_TYPE
from streams.core.catalog import load_catalog
from streams.core.credentials import WeChatSecrets
from streams.core.mp_subscriptions import ANSWER_TYPE
from streams.core.shop_records import ShopTable
from streams.core.shops import ShopRules
from streams.core.sms_packages import PackageShelf
from streams.core.sms_quota import AccountBook, load_packages
from streams.core.tokens import PLATFORM, Tokens
from streams.core.topics import Topics
from streams.core.webhooks import EndpointTable
from streams.logs import get_logger
from streams.ops.scene_switch import RuleChange, switch, wechat_accounts
from streams.ops.shop_store import read_settings_history
from streams.runtime.aliyun_keys import aliyun_keys
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.publisher import Publisher
from streams.runtime.supervisor import Supervisor
from streams.runtime.web import get_metrics
from streams.settings import Settings


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    who = request.app[CONTEXT].tokens.identity(token) if scheme.lower() == "bearer" and token else None
    if who is None:
        return problem(401, "a valid bearer token is required")
    shop = request.match_info.get("shop_id")
    if shop is not None and who not in (PLATFORM, shop):
        return problem(403, f"this token may not reach shop {shop}")
    request[WHO] = who
    return await handler(request)


def _query_names(document: dict[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """(path, METHOD) -> the query parameters the OpenAPI document gives that operation."""
    names: dict[tuple[str, str], frozenset[str]] = {}
    for path, item in document["paths"].items():
        shared = [p["name"] for p in item.get("parameters", []) if p.get("in") == "query"]
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                own = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
                names[(path, method.upper())] = frozenset([*shared, *own])
    return names


QUERY_NAMES = _query_names(OPENAPI)


@web.middleware
async def known_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A query parameter the document does not give the operation is refused (422) naming it,
    never silently ignored."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else ""
    allowed = QUERY_NAMES.get((path, request.method))
    unknown = sorted(set(request.query) - allowed) if allowed is not None else []
    if unknown:
        return problem(422, f"{quote(unknown[0], 40)}: not a query parameter of {request.method} {path}")
    return await handler(request)


async def get_catalog(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTEXT].catalog.model_dump(mode="json"))


@for_shop
async def get_settings(_: web.Request, __: ApiContext, shop: ShopRules) -> web.Response:
    return web.json_response(shop.model_dump(mode="json"))


async def put_settings(request: web.Request) -> web.Response:
    shop_id = request.match_info["shop_id"]
    try:
        document = orjson.loads(await body_bytes(request))
    except orjson.JSONDecodeError as exc:  # also: nested too deep, a lone surrogate
        return problem(400, f"the body must be JSON in UTF-8 ({quote(str(exc), 120)})")
    if not isinstance(document, dict) or document.get("shop_id") != int(shop_id):
        return problem(422, f"shop_id: must be {shop_id}, as in the path")
    return await save(request, shop_id, document, "put settings")


@for_shop
async def switch_scene(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    """Turn a scene on or off on a channel (optionally choosing its template, body
    :class:`SwitchRequest`). A WeChat scene turned on without a template of the account gets one
    added (:mod:`streams.ops.scene_switch`), and it is deleted again if the save fails."""
    scene_id, action = request.match_info["scene"], request.match_info["action"]
    name = request.match_info["channel"]
    if name not in {channel.value for channel in ChannelName}:
        return problem(422, f"scenes.{quote(scene_id)}.{quote(name)}: no such channel")
    channel = ChannelName(name)
    body = SwitchRequest()
    if await body_bytes(request):
        parsed = await read_body(request, SwitchRequest)
        if isinstance(parsed, web.Response):
            return parsed
        body = parsed
    change = RuleChange(
        enabled=action == "enable", template=body.template, library_id=body.library_id, fields=body.fields
    )
    switched = await switch(shop, context.catalog, scene_id, channel, change, context.templates.__getitem__)
    answer = await save(
        request, str(shop.shop_id), switched.shop.model_dump(mode="json"), f"{action} {scene_id}/{channel}"
    )
    if answer.status != 200 and switched.undo is not None:
        await switched.undo()  # no unused template stays on the account
    return answer


@for_shop
async def list_templates(_: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    """The templates the shop's Official Account and Mini Program hold, and the scenes using each."""
    listing = []
    for channel, templates in context.templates.items():
        appid = shop.account(channel)
        if appid is None:
            continue
        listing += [
            t.model_dump()
            | {
                "channel": channel.value,
                "used_by": [f"{s}/{c.value}" for s, c in shop.using_template(t.template_id)],
            }
            for t in await templates.list(appid)
        ]
    return web.json_response(listing)


@for_shop
async def delete_template(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    """Delete a template from the shop's OA (or MP: ``?channel=wechat_mp``); the scenes that used
    it are turned off, saying why."""
    template_id = request.match_info["template_id"]
    name = request.query.get("channel", ChannelName.WECHAT_OA.value)
    if name not in {c.value for c in context.templates}:
        return problem(422, f"channel: {quote(name)} holds no templates (wechat_oa or wechat_mp)")
    channel = ChannelName(name)
    appid = shop.account(channel)
    if appid is None:
        return problem(404, f"the shop has no {channel.value} account")
    await context.templates[channel].delete(appid, template_id)
    document = shop.model_dump(mode="json")
    for scene_id, used_on in shop.using_template(template_id):
        document["scenes"][scene_id][used_on.value].update(
            enabled=False, template_id=None, disabled_reason=f"its template {template_id} was deleted"
        )
    return await save(request, str(shop.shop_id), document, f"delete template {template_id}")


async def get_history(request: web.Request) -> web.Response:
    """Every change of the shop's settings still kept (a year), oldest first: who, when, what."""
    context = request.app[CONTEXT]
    shop_id = int(request.match_info["shop_id"])
    history = await asyncio.to_thread(
        read_settings_history, context.bootstrap_servers, context.history_topic, shop_id, HISTORY_READ_SECONDS
    )
    return web.json_response([change.model_dump(mode="json") for change in history])


async def healthz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    loaded = context.follower.loaded.is_set() and context.sms.follower.loaded.is_set()
    ready = loaded and all(t.running for t in context.supervisor.tasks.values())
    return web.json_response({"ready": ready}, status=200 if ready else 503)


HISTORY_READ_SECONDS = 30.0


def context_from(settings: Settings, topics: Topics) -> ApiContext:
    """Everything the API needs, from the settings (ConfigError for a bad catalog or tokens)."""
    catalog = load_catalog(settings.config_dir / "catalog.yaml")
    timeout = aiohttp.ClientTimeout(total=settings.http_total_timeout, connect=settings.http_connect_timeout)
    session = SharedSession(timeout)
    shops = ShopTable(catalog)
    book = AccountBook()
    box = settings.secret_box()
    secrets = WeChatSecrets(box, settings.wechat_secrets)
    aliyun = aliyun_keys(settings, secrets)
    wechat = WeChatDesk(
        secrets,
        TableFollower(settings.kafka_bootstrap_servers, topics.credentials, secrets, what="WeChat apps"),
        topics.credentials,
        box,
    )
    shelf = PackageShelf(load_packages(settings.config_dir / "sms_packages.yaml"))
    sms = SmsDesk(
        shelf,
        book,
        TableFollower(settings.kafka_bootstrap_servers, topics.sms_account, book, what="SMS accounts"),
        topics.sms_account,
        AliyunSmsReview(aliyun) if aliyun is not None else None,
        TableFollower(settings.kafka_bootstrap_servers, topics.sms_packages, shelf, what="SMS packages"),
        topics.sms_packages,
    )
    return ApiContext(
        settings.kafka_bootstrap_servers,
        catalog,
        shops,
        TableFollower(settings.kafka_bootstrap_servers, topics.settings, shops),
        Publisher(settings.kafka_bootstrap_servers),
        Supervisor(),
        topics.settings,
        topics.settings_history,
        settings.recipient_key.get_secret_value().encode() if settings.recipient_key else None,
        Tokens.configured(settings.api_platform_token, settings.api_shop_tokens),
        wechat_accounts(settings, session, wechat.apps),
        session.close,
        sms,
        topics.event_topic_for(ANSWER_TYPE),
        _pool(settings),
        _webhooks(settings, topics),
        topics.event_topic_for(PREFERENCES_TYPE),
        wechat,
    )


def _webhooks(settings: Settings, topics: Topics) -> WebhookDesk:
    endpoints = EndpointTable()
    follower = TableFollower(
        settings.kafka_bootstrap_servers, topics.webhooks, endpoints, what="webhook endpoints"
    )
    return WebhookDesk(endpoints, follower, topics.webhooks, frozenset(settings.webhook_allowed_hosts))


def _pool(settings: Settings) -> AsyncConnectionPool | None:
    """Connections to the send log's database, opened with the app (not before it serves)."""
    if settings.database_url is None:
        return None
    return AsyncConnectionPool(
        settings.database_url.get_secret_value(), min_size=1, max_size=8, timeout=5.0, open=False
    )


async def get_openapi(_: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def build_app(context: ApiContext) -> web.Application:
    app = web.Application(
        middlewares=[problems_as_json, authorize, known_query], client_max_size=MAX_BODY_BYTES
    )
    app[CONTEXT] = context

    async def follow_settings(app: web.Application) -> AsyncIterator[None]:
        context.publisher.start()
        if context.database is not None:
            await context.database.open(wait=False)
        context.supervisor.start("settings", context.follower.run)
        context.supervisor.start("sms_accounts", context.sms.follower.run)
        if context.webhooks is not None:
            context.supervisor.start("webhook_endpoints", context.webhooks.follower.run)
        if context.wechat is not None:
            context.supervisor.start("wechat_apps", context.wechat.follower.run)
        if context.sms.packages_follower is not None:
            context.supervisor.start("sms_packages", context.sms.packages_follower.run)
        yield
        await context.supervisor.stop(grace_seconds=5.0)
        await context.publisher.close(wait_seconds=5.0)
        await context.close()
        if context.database is not None:
            await context.database.close()

    app.cleanup_ctx.append(follow_settings)
    app.add_routes(
        [
            web.get("/openapi.json", get_openapi),
            web.get("/healthz", healthz),
            web.get("/metrics", get_metrics),
            web.get("/v1/catalog", get_catalog),
            web.get(f"/v1/shops/{SHOP_ID}/settings", get_settings),
            web.put(f"/v1/shops/{SHOP_ID}/settings", put_settings),
            web.get(f"/v1/shops/{SHOP_ID}/settings/history", get_history),
            web.post(
                f"/v1/shops/{SHOP_ID}/scenes/{{scene}}/{{channel}}/{{action:enable|disable}}", switch_scene
            ),
            web.get(f"/v1/shops/{SHOP_ID}/templates", list_templates),
            web.delete(f"/v1/shops/{SHOP_ID}/templates/{{template_id}}", delete_template),
            *SMS_ROUTES,
            *SMS_PAPERS_ROUTES,
            *SMS_PACKAGES_ROUTES,
            *WECHAT_APPS_ROUTES,
            *PLATFORM_KEY_ROUTES,
            *HISTORY_ROUTES,
            *MP_ROUTES,
            *MESSAGES_ROUTES,
            *WEBHOOK_ROUTES,
            *PREFERENCES_ROUTES,
        ]
    )
    return app


def serve_api(app: web.Application, settings: Settings) -> None:
    """Run the API until SIGTERM or SIGINT, saying where it listens and what is risky about it."""
    context = app[CONTEXT]
    if not _loopback(settings.api_host):
        log.warning(
            "the admin API listens beyond this machine: put it behind TLS (a reverse proxy)",
            extra={"host": settings.api_host},
        )
    if len(context.tokens) == 0:
        log.warning(
            "no API tokens configured: every call but /healthz and /openapi.json is refused (401); "
            "set MALL_NOTIFY_API_PLATFORM_TOKEN and MALL_NOTIFY_API_SHOP_TOKENS"
        )
    url = f"http://{settings.api_host}:{settings.api_port}"
    web.run_app(
        app,
        host=settings.api_host,
        port=settings.api_port,
        print=lambda _: log.info("admin API listening", extra={"url": url, "tokens": len(context.tokens)}),
        access_log=get_logger("api.access"),
        **HANDLER_ARGS,
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
