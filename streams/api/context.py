"""What every endpoint of the admin API shares: the context, who is asking, JSON problems, the
shop a path names, and saving a shop's settings (validated, within what the shop may change,
acknowledged by Kafka, audited)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from channels.aliyun_review import AliyunSmsReview
from channels.aliyun_sms import AliyunCallFailed
from channels.base import ChannelName, ErrorClass, SendResult
from channels.wechat import CallFailed
from channels.wechat_templates import AccountTemplates
from streams.api.bodies import BodyT
from streams.api.openapi import Problems
from streams.core.catalog import Catalog
from streams.core.credentials import SecretBox, WeChatSecrets
from streams.core.errors import ConfigError, MallNotifyError
from streams.core.ownership import record_changes
from streams.core.settings_history import history_record, settings_change
from streams.core.shop_checks import shop_problems
from streams.core.shop_records import ShopTable, sealed, settings_record
from streams.core.shops import ShopRules
from streams.core.sms_packages import PackageShelf
from streams.core.sms_quota import AccountBook
from streams.core.sms_signatures import NotYours, Refused
from streams.core.tokens import PLATFORM, Tokens
from streams.core.validation import problems as validation_problems
from streams.core.webhooks import EndpointTable
from streams.logs import get_logger
from streams.ops.wechat_apps import NoSecretsKey
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.publisher import Publisher
from streams.runtime.kafka.records import Write
from streams.runtime.supervisor import Supervisor


class NoAliyun(MallNotifyError):
    """A call needs Aliyun and this API has no AccessKey (503)."""


@dataclass(frozen=True)
class SmsDesk:
    """The SMS business: packages, the shops' accounts (followed), and Aliyun's reviews."""

    packages: PackageShelf
    book: AccountBook
    follower: TableFollower
    account_topic: str
    aliyun: AliyunSmsReview | None
    packages_follower: TableFollower | None = None
    packages_topic: str = ""


@dataclass(frozen=True)
class WeChatDesk:
    """The merchants' WeChat apps (followed, their secrets sealed), where they are written, and
    the key new secrets are sealed with (None: secrets cannot be registered)."""

    apps: WeChatSecrets
    follower: TableFollower
    topic: str
    box: SecretBox | None


@dataclass(frozen=True)
class WebhookDesk:
    """The merchants' webhook endpoints (followed), where they are written, and the receivers
    called even on a private address (the demo's, the tests')."""

    endpoints: EndpointTable
    follower: TableFollower
    topic: str
    allowed_hosts: frozenset[str]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAVE_WAIT_SECONDS = 10.0
MAX_BODY_BYTES = 256 * 1024
SHOP_ID = r"{shop_id:[1-9][0-9]{0,17}}"
"""ASCII digits only, no zero first: one spelling per shop (not ``01001``, not ``١٠٠١``)."""
log = get_logger("api")
audit = get_logger("audit")


@dataclass(frozen=True)
class ApiContext:
    bootstrap_servers: str
    catalog: Catalog
    shops: ShopTable
    follower: TableFollower
    publisher: Publisher
    supervisor: Supervisor
    settings_topic: str
    history_topic: str
    recipient_key: bytes | None
    """the platform's key for the recipients' hashes (history); None when not configured"""
    tokens: Tokens
    templates: dict[ChannelName, AccountTemplates]
    """the templates of the shops' WeChat accounts, per channel"""
    close: Callable[[], Awaitable[None]]
    sms: SmsDesk
    mp_answers_topic: str | None
    """where the buyers' answers to the Mini Program's subscription panel are published"""
    database: AsyncConnectionPool | None = None
    """the send log's PostgreSQL (None: not configured)"""
    webhooks: WebhookDesk | None = None
    preferences_topic: str | None = None
    """where the buyers' preferences are published (the mall's own topic for them)"""
    wechat: WeChatDesk | None = None
    """the merchants' WeChat apps registered at run time"""


CONTEXT: web.AppKey[ApiContext] = web.AppKey("context", ApiContext)
WHO: web.RequestKey[str] = web.RequestKey("who", str)
PUBLIC = frozenset({"/openapi.json", "/healthz", "/metrics"})


BODY_SECONDS = 10.0
"""how long a request's body may take to arrive: a slow or lying client is cut off then"""


def problem(status: int, message: str) -> web.Response:
    return web.json_response({"problems": [message]}, status=status)


async def body_bytes(request: web.Request) -> bytes:
    """The request's body, within :data:`BODY_SECONDS` (408 otherwise)."""
    try:
        return await asyncio.wait_for(request.read(), BODY_SECONDS)
    except TimeoutError:
        raise web.HTTPRequestTimeout() from None


def quote(text: str, limit: int = 64) -> str:
    """User input echoed in a message, cut short."""
    return text if len(text) <= limit else text[:limit] + "..."


ShopHandler = Callable[[web.Request, ApiContext, ShopRules], Awaitable[web.Response]]


LIMIT_ADVICE = "delete templates the shop no longer uses (GET .../templates shows which) and try again"
WECHAT_STATUS = {"40037": 404, "45026": 409, "200012": 409}
WECHAT_ADVICE = {
    "40037": "no such template on the shop's account",
    "45026": LIMIT_ADVICE,
    "200012": LIMIT_ADVICE,
}


def wechat_refusal(result: SendResult) -> web.Response:
    """WeChat's answer as the API's: the caller's mistake is a 4xx naming WeChat's code (unknown
    template 404, 25-template limit 409, others 422); only an outage or a busy WeChat is 502."""
    code = result.code or "?"
    if result.error_class is not ErrorClass.PERMANENT:
        return problem(502, f"WeChat did not answer usefully ({code}: {result.reason}); try again later")
    advice = WECHAT_ADVICE.get(code)
    message = f"WeChat refused it ({code}: {result.reason})" + (f": {advice}" if advice else "")
    return problem(WECHAT_STATUS.get(code, 422), message)


def aliyun_refusal(result: SendResult) -> web.Response:
    """Aliyun's answer to a review call as the API's: its refusal is a 422 naming the code, an
    outage a 502."""
    if result.error_class is ErrorClass.PERMANENT:
        return problem(422, f"Aliyun refused it ({result.code}: {result.reason})")
    return problem(502, f"Aliyun did not answer usefully ({result.code}: {result.reason}); try again later")


REFUSALS: list[tuple[type[Exception], Callable[[Any], web.Response]]] = [
    (CallFailed, lambda failure: wechat_refusal(failure.result)),
    (AliyunCallFailed, lambda failure: aliyun_refusal(failure.result)),
    (NotYours, lambda refusal: problem(403, str(refusal))),
    (Refused, lambda refusal: problem(409, str(refusal))),
    (NoAliyun, lambda exc: problem(503, str(exc))),
    (NoSecretsKey, lambda exc: problem(503, str(exc))),
    (ConfigError, lambda exc: web.json_response(Problems(problems=exc.problems).model_dump(), status=422)),
]
"""How a refusal raised by an endpoint is answered, the first kind that matches"""


def for_shop(handler: ShopHandler) -> Handler:
    """Resolve the path's shop (404 without settings); answer the refusals of WeChat, Aliyun and
    the reviews by their kind (:data:`REFUSALS`)."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        context = request.app[CONTEXT]
        shop_id = int(request.match_info["shop_id"])
        shop = context.shops.get(shop_id)
        if shop is None:
            return problem(404, f"shop {shop_id} has no settings")
        try:
            return await handler(request, context, shop)
        except tuple(kind for kind, _ in REFUSALS) as refusal:
            return next(answer(refusal) for kind, answer in REFUSALS if isinstance(refusal, kind))

    return endpoint


async def read_body(request: web.Request, model: type[BodyT]) -> BodyT | web.Response:
    try:
        return model.model_validate(orjson.loads(await body_bytes(request)))
    except orjson.JSONDecodeError as exc:
        return problem(400, f"the body must be JSON in UTF-8 ({quote(str(exc), 120)})")
    except ValidationError as exc:
        return web.json_response({"problems": validation_problems(exc)}, status=422)


async def platform_body(request: web.Request, model: type[BodyT], refusal: str) -> BodyT | web.Response:
    """The body of a request only the platform may make (403 saying ``refusal`` for anyone else)."""
    if request[WHO] != PLATFORM:
        return problem(403, refusal)
    return await read_body(request, model)


async def acknowledged(context: ApiContext, writes: list[Write], what: str) -> web.Response | None:
    """Write records and wait for Kafka's acknowledgement; a 503 when it does not come."""
    try:
        errors = await asyncio.wait_for(context.publisher.write(writes), SAVE_WAIT_SECONDS)
        trouble = next((error.str() for error in errors if error is not None), None)
    except TimeoutError:
        trouble = f"no acknowledgement in {SAVE_WAIT_SECONDS:.0f} s"
    if trouble is None:
        return None
    return problem(503, f"Kafka did not acknowledge the {what} ({trouble}); try again")


async def save(
    request: web.Request, shop_id: str, document: object, action: str, reviewed: bool = False
) -> web.Response:
    """Validate and save a shop's settings; 422 lists every problem, 403 what a shop may not
    change (``reviewed``: the change comes from a review, which may). A saved change is audited."""
    context = request.app[CONTEXT]
    previous = context.shops.get(int(shop_id))
    try:
        shop = sealed(ShopRules.model_validate(document), context.recipient_key, previous)
    except ValidationError as exc:
        return web.json_response(Problems(problems=validation_problems(exc)).model_dump(), status=422)
    refused = record_changes(previous, shop) if request[WHO] != PLATFORM and not reviewed else []
    if refused:
        return web.json_response(Problems(problems=refused).model_dump(), status=403)
    broken = shop_problems(shop, context.catalog)  # validated once, then checked against the catalog
    if broken:
        return web.json_response(Problems(problems=broken).model_dump(), status=422)
    change = settings_change(previous, shop, request[WHO], action, datetime.now(UTC))
    writes = [
        Write(context.settings_topic, *settings_record(shop)),
        Write(context.history_topic, *history_record(change)),
    ]
    refusal = await acknowledged(context, writes, "settings")
    if refusal is not None:
        return refusal
    audit.info("settings changed", extra=change.model_dump(mode="json", exclude={"at"}))
    context.shops.accept(shop)
    return web.json_response(shop.model_dump(mode="json"))
