"""The admin API's endpoint for the platform's Aliyun AccessKey, registered at run time (platform
token): ``PUT /v1/platform/aliyun`` with ``{"access_key_id", "secret"}``, ``GET`` shows the key id and
the secret's last four characters. Sealed like the merchants' AppSecrets on ``notify.credentials``;
every Aliyun client of the workers and the API uses it from its next call."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from streams.api.bodies import AliyunKeyRequest
from streams.api.context import CONTEXT, WHO, acknowledged, audit, platform_body, problem
from streams.core.credentials import aliyun_record
from streams.core.sms_signatures import Refused
from streams.core.tokens import PLATFORM
from streams.ops.wechat_apps import NoSecretsKey, register_aliyun
from streams.runtime.kafka.records import Write

PATH = "/v1/platform/aliyun"
PLATFORM_ONLY = "the platform's AccessKey is the platform's (platform token)"


async def put_key(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    body = await platform_body(request, AliyunKeyRequest, PLATFORM_ONLY)
    if isinstance(body, web.Response):
        return body
    desk = context.wechat
    try:
        if desk is None:
            raise NoSecretsKey("this API does not follow the credentials")
        key = register_aliyun(body.access_key_id, body.secret, desk.box, datetime.now(UTC), request[WHO])
    except NoSecretsKey as exc:
        return problem(503, str(exc))
    except Refused as exc:
        return problem(422, str(exc))
    refusal = await acknowledged(context, [Write(desk.topic, *aliyun_record(key))], "AccessKey")
    if refusal is not None:
        return refusal
    desk.apps.apply(*aliyun_record(key))  # read your own write
    audit.info("aliyun access key registered", extra=key.shown())
    return web.json_response(key.shown())


async def get_key(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    if request[WHO] != PLATFORM:
        return problem(403, PLATFORM_ONLY)
    key = context.wechat.apps.aliyun if context.wechat is not None else None
    if key is None:
        return problem(
            404, "no AccessKey was registered (MALL_NOTIFY_ALIYUN_ACCESS_KEY_ID may be configured)"
        )
    return web.json_response(key.shown())


ROUTES = [web.put(PATH, put_key), web.get(PATH, get_key)]
