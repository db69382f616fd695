"""The receipts the sandbox pushes, as WeChat and Aliyun do, for every message it accepted: to
``<receipts_url>/receipts/wechat/<appid>`` (OA ``TEMPLATESENDJOBFINISH``, MP
``subscribe_msg_sent_event``; signed with the Token, encrypted for the accounts with an
EncodingAESKey) and ``<receipts_url>/receipts/aliyun/<secret>`` (SmsReport), after
``delay_seconds``; a share ``loss_rate`` is never pushed. Users in ``blocked_openids`` and phones in
``unreachable_phones`` get failure receipts. A push not answered 200 is pushed again as the
providers do: WeChat at once, three times, after 5 s without an answer; Aliyun after 1, 5 and 10
minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from channels.sandbox import aliyun_review
from channels.sandbox.state import State
from channels.wechat_push import encrypt, sign

CHINA = timezone(timedelta(hours=8))
TICK_SECONDS = 0.05


def queue_wechat(state: State, channel: str, appid: str, body: dict[str, Any], msgid: int) -> None:
    """A receipt for an OA template message or an MP subscribe message just accepted."""
    receipts = state.seed.receipts
    openid = str(body.get("touser", ""))
    blocked = openid in receipts.blocked_openids
    if channel == "wechat_oa":
        status = "failed:user block" if blocked else "success"
        event = (
            "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>"
            f"<MsgID>{msgid}</MsgID><Status><![CDATA[{status}]]></Status>"
        )
    else:
        code, status = ("43101", "user refuse to accept the msg") if blocked else ("0", "success")
        event = (
            "<Event><![CDATA[subscribe_msg_sent_event]]></Event><SubscribeMsgSentEvent><List>"
            f"<TemplateId><![CDATA[{body.get('template_id', '')}]]></TemplateId><MsgID>{msgid}</MsgID>"
            f"<ErrorCode>{code}</ErrorCode><ErrorStatus><![CDATA[{status}]]></ErrorStatus></List></SubscribeMsgSentEvent>"
        )
    xml = (
        f"<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>{event}</xml>"
    )
    _queue(state, {"kind": "wechat", "appid": appid, "xml": xml})


def queue_sms(state: State, query: dict[str, str], biz_id: str) -> None:
    """A report for an SMS just accepted (one per phone number)."""
    receipts = state.seed.receipts
    now = datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    for phone in query.get("PhoneNumbers", "").split(","):
        failed = phone in receipts.unreachable_phones
        report = {
            "phone_number": phone,
            "send_time": now,
            "report_time": now,
            "success": not failed,
            "err_code": "MK:0001" if failed else "DELIVERED",
            "err_msg": "用户手机关机或停机" if failed else "用户接收成功",
            "sms_size": "1",
            "biz_id": biz_id,
            "out_id": query.get("OutId", ""),
        }
        _queue(state, {"kind": "aliyun", "report": report})


TEMPLATE_TYPES = {0: "验证码", 1: "短信通知", 2: "推广短信", 3: "国际/港澳台消息"}


def queue_reviews(state: State) -> None:
    """Aliyun's SignSmsReport / TemplateSmsReport for each review that ended since the last tick
    (https://help.aliyun.com/document_detail/120998.html, .../120999.html): one report per push."""
    aliyun = state.aliyun
    if not aliyun.review_pushes:
        return
    now, at = state.clock(), datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    for name in [n for n, seeded in aliyun.signs.items() if seeded.submitted_at is not None]:
        reviewed = aliyun_review.current_sign(aliyun, name, now)
        if reviewed is None or reviewed.status == "reviewing" or ("sign", name) in aliyun.reported:
            continue
        aliyun.reported.add(("sign", name))
        report = {
            "sign_source": "企事业单位的全称或简称",
            "reason": reviewed.reason,
            "sign_name": name,
            "orderId": reviewed.order_id,
            "sign_status": reviewed.status,
            "remark": "",
            "sign_scene": "通用",
            "create_date": at,
        }
        _queue(state, {"kind": "sign_report", "report": report})
    for code in [c for c, template in aliyun.templates.items() if template.submitted_at is not None]:
        template = aliyun_review.current_template(aliyun, code, now)
        if template is None or template.status == "reviewing" or ("template", code) in aliyun.reported:
            continue
        aliyun.reported.add(("template", code))
        report = {
            "template_type": TEMPLATE_TYPES.get(template.template_type, "短信通知"),
            "reason": template.reason,
            "template_name": template.name,
            "orderId": template.order_id,
            "template_content": template.content,
            "template_status": template.status,
            "remark": "",
            "template_code": code,
            "create_date": at,
        }
        _queue(state, {"kind": "template_report", "report": report})


REPORT_PATHS = {"aliyun": "", "sign_report": "/sign-reports", "template_report": "/template-reports"}


def _queue(state: State, push: dict[str, Any]) -> None:
    receipts = state.seed.receipts
    if state.receipts_url is None or random.random() < receipts.loss_rate:
        return
    state.pushes.append((time.monotonic() + receipts.delay_seconds, push))


def _wechat_request(state: State, push: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    receipts = state.seed.receipts
    appid, xml = push["appid"], push["xml"]
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    key = receipts.aes_keys.get(appid)
    if key is None:
        query = {
            "signature": sign(receipts.wechat_token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        return f"/receipts/wechat/{appid}", query, xml.encode()
    encrypted = encrypt(xml.encode(), appid, key)
    query = {
        "encrypt_type": "aes",
        "msg_signature": sign(receipts.wechat_token, timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    body = (
        "<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    return f"/receipts/wechat/{appid}", query, body.encode()


WECHAT_RETRIES = 3
"""WeChat drops a push not answered in 5 s and pushes it again, three times in all (消息推送:
"微信服务器在五秒内收不到响应会断掉连接，并且重新发起请求，总共重试三次")"""
PUSH_TIMEOUT_SECONDS = 5.0
ALIYUN_RETRY_AFTER = (60.0, 300.0, 600.0)
"""Aliyun's SmsReport (HTTP batch push) is retried after 1, 5 and 10 minutes"""


async def _push(session: aiohttp.ClientSession, state: State, push: dict[str, Any]) -> int:
    """One push attempt: the endpoint's HTTP status, 0 without an answer in time."""
    if push["kind"] == "wechat":
        if "request" not in push:
            push["request"] = _wechat_request(state, push)
        path, query, body = push["request"]
        headers = {"Content-Type": "text/xml"}
    else:
        path = f"/receipts/aliyun/{state.seed.receipts.aliyun_secret}{REPORT_PATHS[push['kind']]}"
        query = {}
        body, headers = orjson.dumps([push["report"]]), {"Content-Type": "application/json"}
    try:
        async with session.post(
            f"{state.receipts_url}{path}", params=query, data=body, headers=headers
        ) as reply:
            status = reply.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        state.pushed.append({"path": path, "status": 0, "error": type(exc).__name__})
        return 0
    state.pushed.append({"path": path, "status": status})
    return status


async def _deliver(session: aiohttp.ClientSession, state: State, push: dict[str, Any]) -> None:
    """A push and the provider's retries of it until it is answered 200. WeChat's retries are the
    same request (timestamp, nonce and signature)."""
    waits = (0.0,) * WECHAT_RETRIES if push["kind"] == "wechat" else ALIYUN_RETRY_AFTER
    for wait in (0.0, *waits):
        await asyncio.sleep(wait)
        if await _push(session, state, push) == 200:
            return


async def pushing(app: web.Application, state: State) -> AsyncIterator[None]:
    """A background task of the sandbox: push what is due, each push on its own (a slow answer
    holds up only its own push)."""
    running: set[asyncio.Task[None]] = set()

    async def run() -> None:
        timeout = aiohttp.ClientTimeout(total=PUSH_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                queue_reviews(state)
                now = time.monotonic()
                while state.pushes and state.pushes[0][0] <= now:
                    _, push = state.pushes.popleft()
                    task = asyncio.create_task(_deliver(session, state, push))
                    running.add(task)
                    task.add_done_callback(running.discard)
                await asyncio.sleep(TICK_SECONDS)

    task = asyncio.create_task(run())
    yield
    for pending in (task, *running):
        pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
