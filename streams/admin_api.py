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
from openapi_pydantic import Info, MediaType, OpenAPI, Operation, PathItem, RequestBody, Response
from openapi_pydantic.util import PydanticSchema, construct_open_api_with_schema_class
from pydantic import BaseModel, SecretStr

from channels.base import ChannelName
from channels.http import SharedSession
from channels.wechat import CallFailed, WeChatApi
from channels.wechat_templates import OaTemplates
from streams.catalog import Catalog, ConfigError, ShopRules, load_catalog, parse_shop_rules
from streams.kafka_publisher import KafkaPublisher
from streams.settings import Settings
from streams.shop_settings import SettingsView, settings_record
from streams.topics import Topics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PLATFORM = "platform"


class Problems(BaseModel):
    problems: list[str]


@dataclass(frozen=True)
class ApiContext:
    catalog: Catalog
    shops: SettingsView
    publisher: KafkaPublisher
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


async def get_settings(request: web.Request) -> web.Response:
    shop_id = int(request.match_info["shop_id"])
    shop = request.app[CONTEXT].shops.get(shop_id)
    if shop is None:
        return _problem(404, f"shop {shop_id} has no settings")
    return web.json_response(shop.model_dump(mode="json"))


async def _save(context: ApiContext, shop_id: str, document: object) -> web.Response:
    """Validate and save a shop's settings; 422 lists every problem."""
    try:
        shop = parse_shop_rules(document, context.catalog, f"shop {shop_id}")
    except ConfigError as exc:
        problems = str(exc).removeprefix(f"shop {shop_id}: ").split("; ")
        return web.json_response(Problems(problems=problems).model_dump(), status=422)
    await context.publisher.publish(context.settings_topic, *settings_record(shop))
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


def _current(request: web.Request) -> ShopRules | web.Response:
    shop_id = int(request.match_info["shop_id"])
    shop = request.app[CONTEXT].shops.get(shop_id)
    return shop if shop is not None else _problem(404, f"shop {shop_id} has no settings")


async def switch_scene(request: web.Request) -> web.Response:
    """Turn a scene on or off on a channel. Turning on an OA scene with the default template adds
    the template to the shop's Official Account first (api_add_template) and keeps its id."""
    context, shop = request.app[CONTEXT], _current(request)
    if isinstance(shop, web.Response):
        return shop
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
        try:
            rule["template_id"] = await context.templates.add(
                str(shop.account(ChannelName.WECHAT_OA)), default.library_id, list(default.fields)
            )
        except CallFailed as failure:
            return _problem(502, f"WeChat refused to add the template: {failure}")
    return await _save(context, str(shop.shop_id), document)


async def list_templates(request: web.Request) -> web.Response:
    context, shop = request.app[CONTEXT], _current(request)
    if isinstance(shop, web.Response):
        return shop
    appid = shop.account(ChannelName.WECHAT_OA)
    if appid is None:
        return _problem(404, "the shop has no Official Account")
    try:
        templates = await context.templates.list(appid)
    except CallFailed as failure:
        return _problem(502, f"WeChat refused: {failure}")
    return web.json_response(
        [
            t.model_dump() | {"used_by": [f"{s}/{c.value}" for s, c in shop.using_template(t.template_id)]}
            for t in templates
        ]
    )


async def delete_template(request: web.Request) -> web.Response:
    """Delete a template from the shop's OA; the scenes that used it are turned off, saying why."""
    context, shop = request.app[CONTEXT], _current(request)
    if isinstance(shop, web.Response):
        return shop
    template_id = request.match_info["template_id"]
    try:
        await context.templates.delete(str(shop.account(ChannelName.WECHAT_OA)), template_id)
    except CallFailed as failure:
        return _problem(502, f"WeChat refused to delete the template: {failure}")
    document = shop.model_dump(mode="json")
    for scene_id, channel in shop.using_template(template_id):
        document["scenes"][scene_id][channel.value].update(
            enabled=False, template_id=None, disabled_reason=f"its template {template_id} was deleted"
        )
    return await _save(context, str(shop.shop_id), document)


async def healthz(request: web.Request) -> web.Response:
    ready = request.app[CONTEXT].shops.view.is_ready
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def openapi_document() -> OpenAPI:
    def json_of(model: type[BaseModel]) -> dict[str, MediaType]:
        return {"application/json": MediaType(media_type_schema=PydanticSchema(schema_class=model))}

    refused = {
        "401": Response(description="no valid bearer token"),
        "403": Response(description="the token may not reach this shop"),
    }
    settings_path = PathItem(
        get=Operation(
            summary="A shop's settings",
            responses={
                "200": Response(description="the settings", content=json_of(ShopRules)),
                **refused,
                "404": Response(description="no settings yet", content=json_of(Problems)),
            },
        ),
        put=Operation(
            summary="Save a shop's settings (validated; workers apply them to the next event)",
            requestBody=RequestBody(content=json_of(ShopRules), required=True),
            responses={
                "200": Response(description="saved", content=json_of(ShopRules)),
                **refused,
                "422": Response(
                    description="refused: every problem, naming its field", content=json_of(Problems)
                ),
            },
        ),
    )
    document = OpenAPI(
        info=Info(title="mall-notify admin API", version="1"),
        paths={
            "/v1/catalog": PathItem(
                get=Operation(
                    summary="The notification catalog",
                    responses={"200": Response(description="scenes", content=json_of(Catalog)), **refused},
                )
            ),
            "/v1/shops/{shop_id}/settings": settings_path,
            "/v1/shops/{shop_id}/scenes/{scene}/{channel}/enable": PathItem(
                post=Operation(
                    summary="Turn a scene on (an OA default template is added to the shop's OA)",
                    responses={
                        "200": Response(description="saved", content=json_of(ShopRules)),
                        **refused,
                        "422": Response(description="refused", content=json_of(Problems)),
                        "502": Response(description="WeChat refused", content=json_of(Problems)),
                    },
                )
            ),
            "/v1/shops/{shop_id}/scenes/{scene}/{channel}/disable": PathItem(
                post=Operation(
                    summary="Turn a scene off",
                    responses={"200": Response(description="saved", content=json_of(ShopRules)), **refused},
                )
            ),
            "/v1/shops/{shop_id}/templates": PathItem(
                get=Operation(
                    summary="The templates the shop's Official Account holds, and the scenes using each",
                    responses={"200": Response(description="templates"), **refused},
                )
            ),
            "/v1/shops/{shop_id}/templates/{template_id}": PathItem(
                delete=Operation(
                    summary="Delete a template from the shop's OA; scenes using it are turned off",
                    responses={
                        "200": Response(description="saved", content=json_of(ShopRules)),
                        **refused,
                        "502": Response(description="WeChat refused", content=json_of(Problems)),
                    },
                )
            ),
        },
    )
    return construct_open_api_with_schema_class(document)


async def get_openapi(_: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


OPENAPI = openapi_document().model_dump(mode="json", by_alias=True, exclude_none=True)


def context_from(settings: Settings, topics: Topics) -> ApiContext:
    """Everything the API needs, from the settings (ConfigError for a bad catalog)."""
    catalog = load_catalog(settings.config_dir / "catalog.yaml")
    timeout = aiohttp.ClientTimeout(total=settings.http_total_timeout, connect=settings.http_connect_timeout)
    session = SharedSession(timeout)
    wechat = WeChatApi(str(settings.wechat_oa_api_base), settings.wechat_secrets, session)
    return ApiContext(
        catalog,
        SettingsView(settings.kafka_bootstrap_servers, topics.settings, catalog),
        KafkaPublisher(settings.kafka_bootstrap_servers),
        topics.settings,
        settings.api_platform_token,
        settings.api_shop_tokens,
        OaTemplates(wechat),
        session.close,
    )


def build_app(context: ApiContext) -> web.Application:
    app = web.Application(middlewares=[authorize])
    app[CONTEXT] = context

    async def follow_settings(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(context.shops.view.run())
        yield
        await context.shops.view.stop()
        task.cancel()
        await context.publisher.stop()
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
