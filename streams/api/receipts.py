"""The receipts endpoint (``mall-notify receipts``, on ``MALL_NOTIFY_RECEIPTS_PORT``): where the
providers push what became of the messages they accepted.

- ``GET|POST /receipts/wechat/{appid}``: the server URL of a WeChat account (消息推送). GET is
  WeChat's URL check (answers ``echostr``); POST carries events, of which the template send
  result (OA ``TEMPLATESENDJOBFINISH``) and the subscribe send result (MP
  ``subscribe_msg_sent_event``) are receipts. Every call is checked with the account's Token
  (``MALL_NOTIFY_WECHAT_PUSH_TOKEN``) and, in safe mode, decrypted with its EncodingAESKey
  (``MALL_NOTIFY_WECHAT_AES_KEYS``).
- ``POST /receipts/aliyun/{secret}``: Aliyun's SmsReport (HTTP batch push). Aliyun does not sign
  its pushes, so the URL configured at Aliyun carries a secret (``MALL_NOTIFY_ALIYUN_REPORT_SECRET``).
- ``POST /receipts/aliyun/{secret}/sign-reports`` and ``.../template-reports``: Aliyun's
  SignSmsReport and TemplateSmsReport (the end of a signature's or template's review), written to
  ``notify.sms.reviews`` for the worker's reviews lane, which applies them to the shop.

A push that fails its check is refused with 401 and counted
(``mall_notify_receipts_refused_total``). A verified receipt becomes a record of the receipts
topic (never with the phone number or openid) and is answered only once Kafka has it, so a
provider retries what was not kept.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar
from xml.etree.ElementTree import Element

from aiohttp import web

from channels.aliyun_sms import ReportRefused, parse_reports
from channels.base import PushedReceipt
from channels.wechat_push import PushInvalid, PushRefused, ReplayGuard, decrypt, parse_xml, receipts, signed
from streams.api.context import body_bytes
from streams.api.refusals import HANDLER_ARGS, problems_as_json
from streams.core.receipts import receipt_record
from streams.core.sms_review_reports import ReportRefused as ReviewReportRefused
from streams.core.sms_review_reports import parse_push
from streams.logs import Repeats, fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.publisher import Publisher
from streams.runtime.kafka.records import Write
from streams.runtime.web import get_metrics
from streams.settings import Settings

log = get_logger("receipts.endpoint")
WRITE_WAIT_SECONDS = 4.0
"""WeChat drops a push unanswered in 5 s and pushes it again: answer (503 if Kafka has not taken it)
before that"""
NOT_KEPT = Repeats(log, interval_seconds=30.0)
ALIYUN_OK = {"code": 0, "msg": "接收成功"}
Handler = Callable[[web.Request], Awaitable[web.Response]]
T = TypeVar("T")


@dataclass(frozen=True)
class ReceiptsContext:
    publisher: Publisher
    topic: str
    wechat_token: str | None
    aes_keys: dict[str, str]
    aliyun_secret: str | None
    reviews_topic: str = ""
    replays: ReplayGuard = field(default_factory=ReplayGuard)


CONTEXT: web.AppKey[ReceiptsContext] = web.AppKey("receipts", ReceiptsContext)


def _refused(provider: str, reason: str) -> web.Response:
    metrics.RECEIPTS_REFUSED.labels(provider, reason).inc()
    log.warning("push refused", extra=fields(provider=provider, reason=reason))
    return web.json_response({"problems": [f"{provider} push refused: {reason}"]}, status=401)


def _wechat_signed(request: web.Request, context: ReceiptsContext, *more: str) -> bool:
    query = request.query
    token = context.wechat_token
    if token is None:
        return False
    name = "msg_signature" if more else "signature"
    return signed(token, query.get("timestamp", ""), query.get("nonce", ""), query.get(name, ""), *more)


async def wechat_check(request: web.Request) -> web.Response:
    """WeChat's server URL check: the signature, then ``echostr`` back."""
    if not _wechat_signed(request, request.app[CONTEXT]):
        return _refused("wechat", "bad signature")
    return web.Response(text=request.query.get("echostr", ""))


async def wechat_push(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    appid = request.match_info["appid"]
    root = _opened(request, context, appid, await body_bytes(request))
    if isinstance(root, web.Response):
        return root
    timestamp, nonce = request.query.get("timestamp", ""), request.query.get("nonce", "")
    replay = context.replays.refusal(timestamp, nonce, time.time())
    if replay is not None:
        return _refused("wechat", replay)
    try:
        pushed = receipts(root, appid)
    except PushInvalid as exc:
        metrics.RECEIPTS_REFUSED.labels("wechat", "invalid").inc()
        return web.json_response({"problems": [str(exc)]}, status=400)
    answer = await _keep(context, pushed)
    if answer is not None:  # WeChat pushes it again, with the same timestamp and nonce
        context.replays.forget(timestamp, nonce)
    return answer or web.Response(text="success")


def _opened(
    request: web.Request, context: ReceiptsContext, appid: str, body: bytes
) -> Element | web.Response:
    """The push's XML, its signature checked and (safe mode) decrypted; a 401 when it is not WeChat's."""
    safe_mode = request.query.get("encrypt_type") == "aes"
    key = context.aes_keys.get(appid)
    if key is not None and not safe_mode:
        return _refused("wechat", "a plaintext push to an account in safe mode")
    try:
        root = parse_xml(body)
        encrypted = (root.findtext("Encrypt") or "") if safe_mode else None
        if not _wechat_signed(request, context, *([] if encrypted is None else [encrypted])):
            return _refused("wechat", "bad signature")
        if encrypted is None:
            return root
        if key is None:
            return _refused("wechat", "an encrypted push to an account with no EncodingAESKey")
        return parse_xml(decrypt(encrypted, appid, key))
    except PushRefused as exc:
        return _refused("wechat", str(exc))


async def _aliyun_pushed(request: web.Request, parse: Callable[[bytes], list[T]]) -> list[T] | web.Response:
    """An Aliyun push to the URL with our secret, parsed; the refusal (401, 400) otherwise."""
    secret = request.app[CONTEXT].aliyun_secret
    if secret is None or not hmac.compare_digest(request.match_info["secret"].encode(), secret.encode()):
        return _refused("aliyun", "unknown URL secret")
    try:
        return parse(await body_bytes(request))
    except (ReportRefused, ReviewReportRefused) as exc:
        metrics.RECEIPTS_REFUSED.labels("aliyun", "unreadable").inc()
        return web.json_response({"code": 1, "msg": str(exc), "problems": [str(exc)]}, status=400)


async def aliyun_push(request: web.Request) -> web.Response:
    reports = await _aliyun_pushed(request, parse_reports)
    if isinstance(reports, web.Response):
        return reports
    answer = await _keep(request.app[CONTEXT], reports)
    return answer or web.json_response(ALIYUN_OK)


def _review_push(source: Literal["SignSmsReport", "TemplateSmsReport"]) -> Handler:
    async def push(request: web.Request) -> web.Response:
        context = request.app[CONTEXT]
        reports = await _aliyun_pushed(request, lambda body: parse_push(body, source))
        if isinstance(reports, web.Response):
            return reports
        writes = [Write(context.reviews_topic, report.key(), report.value()) for report in reports]
        metrics.SMS_REVIEW_REPORTS.labels(source).inc(len(reports))
        answer = await _written(context, writes, "review reports")
        return answer or web.json_response(ALIYUN_OK)

    return push


async def _keep(context: ReceiptsContext, pushed: list[PushedReceipt]) -> web.Response | None:
    """Write the receipts to the receipts topic; a 503 (the provider pushes again) when Kafka did
    not take them."""
    if not pushed:
        return None
    now = datetime.now(UTC)
    writes = [Write(context.topic, *receipt_record(receipt, now)) for receipt in pushed]
    answer = await _written(context, writes, "receipts")
    if answer is None:
        log.debug("receipts kept", extra=fields(receipts=len(writes), channel=pushed[0].channel.value))
    return answer


async def _written(context: ReceiptsContext, writes: list[Write], what: str) -> web.Response | None:
    """None once Kafka took ``writes``; a 503 (the provider pushes again) when it did not."""
    try:
        errors = await asyncio.wait_for(context.publisher.write(writes), WRITE_WAIT_SECONDS)
        kept = all(error is None for error in errors)
    except TimeoutError:
        kept = False
    if not kept:
        NOT_KEPT.warning(f"{what} not kept: Kafka did not acknowledge them", records=len(writes))
        refusal = "not kept: Kafka did not take it in time, push again"
        return web.json_response({"code": 1, "msg": refusal, "problems": [refusal]}, status=503)
    return None


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"ready": True})


def build_receipts_app(settings: Settings, topic: str, reviews_topic: str) -> web.Application:
    context = ReceiptsContext(
        Publisher(settings.kafka_bootstrap_servers),
        topic,
        settings.wechat_push_token.get_secret_value() if settings.wechat_push_token else None,
        {appid: key.get_secret_value() for appid, key in settings.wechat_aes_keys.items()},
        settings.aliyun_report_secret.get_secret_value() if settings.aliyun_report_secret else None,
        reviews_topic,
    )
    app = web.Application(middlewares=[problems_as_json], client_max_size=1024 * 1024)
    app[CONTEXT] = context

    async def publishing(_: web.Application) -> AsyncIterator[None]:
        context.publisher.start()
        yield
        await context.publisher.close(wait_seconds=5.0)

    app.cleanup_ctx.append(publishing)
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/metrics", get_metrics),
            web.get("/receipts/wechat/{appid}", wechat_check),
            web.post("/receipts/wechat/{appid}", wechat_push),
            web.post("/receipts/aliyun/{secret}", aliyun_push),
            web.post("/receipts/aliyun/{secret}/sign-reports", _review_push("SignSmsReport")),
            web.post("/receipts/aliyun/{secret}/template-reports", _review_push("TemplateSmsReport")),
        ]
    )
    if context.wechat_token is None:
        log.warning("MALL_NOTIFY_WECHAT_PUSH_TOKEN is not set: every WeChat push is refused")
    if context.aliyun_secret is None:
        log.warning("MALL_NOTIFY_ALIYUN_REPORT_SECRET is not set: every Aliyun report is refused")
    return app


def serve_receipts(app: web.Application, settings: Settings) -> None:
    url = f"http://{settings.api_host}:{settings.receipts_port}"
    web.run_app(
        app,
        host=settings.api_host,
        port=settings.receipts_port,
        print=lambda _: log.info("receipts endpoint listening", extra={"url": url}),
        access_log=get_logger("receipts.access"),
        **HANDLER_ARGS,
    )
