"""The receipts the sandbox pushes, as WeChat and Aliyun do, for every message it accepted: to
``<receipts_url>/receipts/wechat/<appid>`` (OA ``TEMPLATESENDJOBFINISH``, MP
``subscribe_msg_sent_event``; signed with the Token, encrypted for the accounts with an
EncodingAESKey) and ``<receipts_url>/receipts/aliyun/<secret>`` (SmsReport), after
``delay_seconds``; a share ``loss_rate`` is never pushed. Users in ``blocked_openids`` and phones in
``unreachable_phones`` get failure receipts.
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


async def _push(session: aiohttp.ClientSession, state: State, push: dict[str, Any]) -> None:
    if push["kind"] == "wechat":
        path, query, body = _wechat_request(state, push)
        headers = {"Content-Type": "text/xml"}
    else:
        path, query = f"/receipts/aliyun/{state.seed.receipts.aliyun_secret}", {}
        body, headers = orjson.dumps([push["report"]]), {"Content-Type": "application/json"}
    try:
        async with session.post(
            f"{state.receipts_url}{path}", params=query, data=body, headers=headers
        ) as reply:
            status = reply.status
    except aiohttp.ClientError as exc:
        status = 0
        state.pushed.append({"path": path, "status": status, "error": type(exc).__name__})
        return
    state.pushed.append({"path": path, "status": status})


async def pushing(app: web.Application, state: State) -> AsyncIterator[None]:
    """A background task of the sandbox: push what is due."""

    async def run() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                now = time.monotonic()
                while state.pushes and state.pushes[0][0] <= now:
                    _, push = state.pushes.popleft()
                    await _push(session, state, push)
                await asyncio.sleep(TICK_SECONDS)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
