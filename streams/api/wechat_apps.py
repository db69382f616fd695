"""The admin API's endpoints for the merchants' WeChat apps, registered at run time (the
platform's): ``PUT /v1/shops/{shop_id}/wechat/{oa|mp}`` with the appid and its AppSecret, and
``GET /v1/shops/{shop_id}/wechat`` (the shop's apps, each secret shown by its last four
characters). The same steps as ``mall-notify wechat register`` (:mod:`streams.ops.wechat_apps`).
Workers use a new or replaced secret from their next token on."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from streams.api.bodies import WeChatAppRequest
from streams.api.context import (
    SHOP_ID,
    WHO,
    ApiContext,
    acknowledged,
    audit,
    for_shop,
    problem,
    read_body,
    save,
)
from streams.core.credentials import AppKind, app_record
from streams.core.shops import ShopRules
from streams.core.tokens import PLATFORM
from streams.ops.wechat_apps import NoSecretsKey, action, register
from streams.runtime.kafka.records import Write


@for_shop
async def put_app(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    if request[WHO] != PLATFORM:
        return problem(403, "a merchant's WeChat apps are registered by the platform (platform token)")
    if context.wechat is None:
        raise NoSecretsKey("this API does not follow the WeChat apps")
    body = await read_body(request, WeChatAppRequest)
    if isinstance(body, web.Response):
        return body
    kind: AppKind = "oa" if request.match_info["kind"] == "oa" else "mp"
    desk = context.wechat
    named, app = register(
        shop, kind, body.appid, body.secret, desk.apps.apps(), desk.box, datetime.now(UTC), request[WHO]
    )
    refusal = await acknowledged(context, [Write(desk.topic, *app_record(app))], "WeChat app")
    if refusal is not None:
        return refusal
    desk.apps.apply(*app_record(app))  # read your own write
    audit.info("wechat app registered", extra=app.shown())
    saved = await save(request, str(shop.shop_id), named.model_dump(mode="json"), action(app), reviewed=True)
    if saved.status != 200:
        return saved
    return web.json_response(app.shown())


@for_shop
async def get_apps(_: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    apps = context.wechat.apps.apps() if context.wechat is not None else []
    return web.json_response([app.shown() for app in apps if app.shop_id == shop.shop_id])


ROUTES = [
    web.put(f"/v1/shops/{SHOP_ID}/wechat/{{kind:oa|mp}}", put_app),
    web.get(f"/v1/shops/{SHOP_ID}/wechat", get_apps),
]
