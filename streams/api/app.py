"""The admin API (aiohttp): the catalog, and each shop's settings, read and saved.

Every call but ``/openapi.json`` and ``/healthz`` needs ``Authorization: Bearer <token>``: the
platform's token reaches every shop, a shop's token only its own (401 without a valid token,
403 for another shop). Saved settings are validated first (422 lists every problem, each naming
its field) and written to the settings topic, which every worker follows: the next event uses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from channels.base import ChannelName
from channels.http import SharedSession
from channels.wechat import CallFailed, WeChatApi
from channels.wechat_templates import OaTemplates
from streams.api.openapi import OPENAPI, Problems
from streams.core.catalog import Catalog, load_catalog
from streams.core.errors import ConfigError
from streams.core.shop_checks import parse_shop_rules
from streams.core.shop_records import ShopTable, settings_record
from streams.core.shops import ShopRules
from streams.core.topics import Topics
from streams.runtime.publisher import Publisher
from streams.runtime.records import Write
from streams.runtime.shop_table import ShopFollower
from streams.runtime.supervisor import Supervisor
from streams.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PLATFORM = "platform"
SAVE_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class ApiContext:
    catalog: Catalog
    shops: ShopTable
    follower: ShopFollower
    publisher: Publisher
    supervisor: Supervisor
    settings_topic: str
    platform_token: SecretStr | None
    shop_tokens: dict[str, SecretStr]
    templates: OaTemplates
    close: Callable[[], Awaitable[None]]

    def identity(self, token: str) -> str | None:
        """``platform``, a shop id, or None for an unknown token."""
        if self.platform_token and token == self.platform_token.get_secret_value():
            return PLATFORM
        return next(
            (shop for shop, secret in self.shop_tokens.items() if token == secret.get_secret_value()), None
        )


CONTEXT: web.AppKey[ApiContext] = web.AppKey("context", ApiContext)
PUBLIC = frozenset({"/openapi.json", "/healthz"})


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"problems": [message]}, status=status)


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    who = request.app[CONTEXT].identity(token) if scheme.lower() == "bearer" and token else None
    if who is None:
        return _problem(401, "a valid bearer token is required")
    shop = request.match_info.get("shop_id")
    if shop is not None and who not in (PLATFORM, shop):
        return _problem(403, f"this token may not reach shop {shop}")
    return await handler(request)


async def get_catalog(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTEXT].catalog.model_dump(mode="json"))


ShopHandler = Callable[[web.Request, ApiContext, ShopRules], Awaitable[web.Response]]


def for_shop(handler: ShopHandler) -> Handler:
    """Resolve the path's shop (404 without settings) and turn WeChat's refusals into 502."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        context = request.app[CONTEXT]
        shop_id = int(request.match_info["shop_id"])
        shop = context.shops.get(shop_id)
        if shop is None:
            return _problem(404, f"shop {shop_id} has no settings")
        try:
            return await handler(request, context, shop)
        except CallFailed as failure:
            return _problem(502, f"WeChat refused: {failure}")

    return endpoint


@for_shop
async def get_settings(_: web.Request, __: ApiContext, shop: ShopRules) -> web.Response:
    return web.json_response(shop.model_dump(mode="json"))


async def _save(context: ApiContext, shop_id: str, document: object) -> web.Response:
    """Validate and save a shop's settings; 422 lists every problem."""
    try:
        shop = parse_shop_rules(document, context.catalog, f"shop {shop_id}")
    except ConfigError as exc:
        return web.json_response(Problems(problems=exc.problems).model_dump(), status=422)
    key, value = settings_record(shop)
    try:
        [error] = await asyncio.wait_for(
            context.publisher.write([Write(context.settings_topic, key, value)]), SAVE_WAIT_SECONDS
        )
        problem = error.str() if error is not None else None
    except TimeoutError:
        problem = f"no acknowledgement in {SAVE_WAIT_SECONDS:.0f} s"
    if problem is not None:
        return _problem(503, f"Kafka did not acknowledge the settings ({problem}); try again")
    context.shops.accept(shop)
    return web.json_response(shop.model_dump(mode="json"))


async def put_settings(request: web.Request) -> web.Response:
    shop_id = request.match_info["shop_id"]
    try:
        document = await request.json()
    except ValueError:
        return _problem(400, "the body must be JSON")
    if not isinstance(document, dict) or str(document.get("shop_id")) != shop_id:
        return _problem(422, f"shop_id: must be {shop_id}, as in the path")
    return await _save(request.app[CONTEXT], shop_id, document)


@for_shop
async def switch_scene(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    """Turn a scene on or off on a channel. Turning on an OA scene with the default template adds
    the template to the shop's Official Account first (api_add_template) and keeps its id."""
    scene_id, channel, action = (
        request.match_info["scene"],
        request.match_info["channel"],
        request.match_info["action"],
    )
    scene = context.catalog.scenes.get(scene_id)
    if scene is None or channel not in {c.value for c in scene.channels}:
        return _problem(422, f"scenes.{scene_id}.{channel}: no such scene, or channel not allowed for it")
    document = shop.model_dump(mode="json")
    rule = document["scenes"].setdefault(scene_id, {}).setdefault(channel, {})
    rule.update(enabled=action == "enable", disabled_reason=None)
    default = scene.default_templates.get(ChannelName(channel))
    if action == "enable" and channel == ChannelName.WECHAT_OA and not rule.get("template_id") and default:
        appid = str(shop.account(ChannelName.WECHAT_OA))
        rule["template_id"] = await context.templates.add(appid, default.library_id, list(default.fields))
    return await _save(context, str(shop.shop_id), document)


@for_shop
async def list_templates(_: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    appid = shop.account(ChannelName.WECHAT_OA)
    if appid is None:
        return _problem(404, "the shop has no Official Account")
    templates = await context.templates.list(appid)
    return web.json_response(
        [
            t.model_dump() | {"used_by": [f"{s}/{c.value}" for s, c in shop.using_template(t.template_id)]}
            for t in templates
        ]
    )


@for_shop
async def delete_template(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    """Delete a template from the shop's OA; the scenes that used it are turned off, saying why."""
    template_id = request.match_info["template_id"]
    await context.templates.delete(str(shop.account(ChannelName.WECHAT_OA)), template_id)
    document = shop.model_dump(mode="json")
    for scene_id, channel in shop.using_template(template_id):
        document["scenes"][scene_id][channel.value].update(
            enabled=False, template_id=None, disabled_reason=f"its template {template_id} was deleted"
        )
    return await _save(context, str(shop.shop_id), document)


async def healthz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    ready = context.follower.loaded.is_set() and all(t.running for t in context.supervisor.tasks.values())
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def context_from(settings: Settings, topics: Topics) -> ApiContext:
    """Everything the API needs, from the settings (ConfigError for a bad catalog)."""
    catalog = load_catalog(settings.config_dir / "catalog.yaml")
    timeout = aiohttp.ClientTimeout(total=settings.http_total_timeout, connect=settings.http_connect_timeout)
    session = SharedSession(timeout)
    wechat = WeChatApi(str(settings.wechat_oa_api_base), settings.wechat_secrets, session)
    shops = ShopTable(catalog)
    return ApiContext(
        catalog,
        shops,
        ShopFollower(settings.kafka_bootstrap_servers, topics.settings, shops),
        Publisher(settings.kafka_bootstrap_servers),
        Supervisor(),
        topics.settings,
        settings.api_platform_token,
        settings.api_shop_tokens,
        OaTemplates(wechat),
        session.close,
    )


async def get_openapi(_: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def build_app(context: ApiContext) -> web.Application:
    app = web.Application(middlewares=[authorize])
    app[CONTEXT] = context

    async def follow_settings(app: web.Application) -> AsyncIterator[None]:
        context.publisher.start()
        context.supervisor.start("settings", context.follower.run)
        yield
        await context.supervisor.stop(grace_seconds=5.0)
        await context.publisher.close(wait_seconds=5.0)
        await context.close()

    app.cleanup_ctx.append(follow_settings)
    app.add_routes(
        [
            web.get("/openapi.json", get_openapi),
            web.get("/healthz", healthz),
            web.get("/v1/catalog", get_catalog),
            web.get("/v1/shops/{shop_id:\\d+}/settings", get_settings),
            web.put("/v1/shops/{shop_id:\\d+}/settings", put_settings),
            web.post(
                "/v1/shops/{shop_id:\\d+}/scenes/{scene}/{channel}/{action:enable|disable}", switch_scene
            ),
            web.get("/v1/shops/{shop_id:\\d+}/templates", list_templates),
            web.delete("/v1/shops/{shop_id:\\d+}/templates/{template_id}", delete_template),
        ]
    )
    return app
