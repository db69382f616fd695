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

from aiohttp import web
from openapi_pydantic import Info, MediaType, OpenAPI, Operation, PathItem, RequestBody, Response
from openapi_pydantic.util import PydanticSchema, construct_open_api_with_schema_class
from pydantic import BaseModel, SecretStr

from streams.catalog import Catalog, ConfigError, ShopRules, parse_shop_rules
from streams.kafka_publisher import KafkaPublisher
from streams.shop_settings import SettingsView, settings_record

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


async def put_settings(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    shop_id = request.match_info["shop_id"]
    try:
        document = await request.json()
    except ValueError:
        return _problem(400, "the body must be JSON")
    if not isinstance(document, dict) or str(document.get("shop_id")) != shop_id:
        return _problem(422, f"shop_id: must be {shop_id}, as in the path")
    try:
        shop = parse_shop_rules(document, context.catalog, f"shop {shop_id}")
    except ConfigError as exc:
        problems = str(exc).removeprefix(f"shop {shop_id}: ").split("; ")
        return web.json_response(Problems(problems=problems).model_dump(), status=422)
    await context.publisher.publish(context.settings_topic, *settings_record(shop))
    return web.json_response(shop.model_dump(mode="json"))


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
        },
    )
    return construct_open_api_with_schema_class(document)


async def get_openapi(_: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


OPENAPI = openapi_document().model_dump(mode="json", by_alias=True, exclude_none=True)


def build_app(context: ApiContext) -> web.Application:
    app = web.Application(middlewares=[authorize])
    app[CONTEXT] = context

    async def follow_settings(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(context.shops.view.run())
        yield
        await context.shops.view.stop()
        task.cancel()
        await context.publisher.stop()

    app.cleanup_ctx.append(follow_settings)
    app.add_routes(
        [
            web.get("/openapi.json", get_openapi),
            web.get("/healthz", healthz),
            web.get("/v1/catalog", get_catalog),
            web.get("/v1/shops/{shop_id:\\d+}/settings", get_settings),
            web.put("/v1/shops/{shop_id:\\d+}/settings", put_settings),
        ]
    )
    return app
