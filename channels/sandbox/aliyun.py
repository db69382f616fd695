"""Aliyun SMS (dysmsapi 2017-05-25) as the official SDK calls it: RPC style ``POST /`` with the
action in ``x-acs-action``, parameters in the query, signed with ACS3-HMAC-SHA256.

The sandbox checks the signature the way Aliyun documents it (canonical request, string to sign,
HMAC-SHA256 with the AccessKey secret), so a wrong secret fails here as it would in production.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from channels.sandbox import aliyun_review
from channels.sandbox.pushes import queue_sms
from channels.sandbox.state import AliyunState, SeedSmsTemplate, State
from channels.sandbox.wechat import STATE_KEY

ALGORITHM = "ACS3-HMAC-SHA256"
_AUTHORIZATION = re.compile(rf"^{ALGORITHM} Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)$")
_PHONE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
_VARIABLE = re.compile(r"\$\{(\w+)\}")
MAX_PARAM_LENGTH = 35
CHINA = timezone(timedelta(hours=8))
"""Aliyun's SendDate and dates in its answers are Beijing time"""
KEPT_DAYS = 30
Action = Callable[[AliyunState, Mapping[str, str], float], dict[str, Any]]


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed: list[str],
    payload_hash: str,
) -> str:
    canonical_query = "&".join(f"{key}={quote(query[key], safe='~')}" for key in sorted(query))
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    return "\n".join(
        [method, path or "/", canonical_query, canonical_headers, ";".join(signed), payload_hash]
    )


def signature(secret: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _reply(code: str, message: str, status: int = 200) -> web.Response:
    return _answer({"Code": code, "Message": message}, status)


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response({"RequestId": str(uuid.uuid4()).upper(), **body}, status=status)


def _authentication_error(state: AliyunState, request: web.Request, body: bytes) -> web.Response | None:
    match = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
    if match is None:
        return _reply(
            "IncompleteSignature", "The request signature does not conform to Aliyun standards.", 400
        )
    key_id, signed_headers, given = match.groups()
    secret = state.seed.access_keys.get(key_id) if key_id not in state.disabled_keys else None
    if secret is None:
        return _reply("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
    payload_hash = hashlib.sha256(body).hexdigest()
    if request.headers.get("x-acs-content-sha256") != payload_hash:
        return _reply("SignatureDoesNotMatch", "The payload hash does not match.", 400)
    headers = {name.lower(): value for name, value in request.headers.items()}
    canonical = canonical_request(
        request.method, request.path, dict(request.query), headers, signed_headers.split(";"), payload_hash
    )
    if not hmac.compare_digest(signature(secret, canonical), given):
        return _reply(
            "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400
        )
    return None


def _throttled(state: AliyunState, phone: str, now: float) -> bool:
    """Aliyun's per-phone flow control: 1 a minute, 5 an hour, 10 a day by default."""
    sent = state.sent_at.setdefault(phone, deque())
    while sent and sent[0] <= now - 86400:
        sent.popleft()
    limits = state.seed.throttle
    windows = ((60, limits.per_minute), (3600, limits.per_hour), (86400, limits.per_day))
    return any(sum(1 for t in sent if t > now - seconds) >= limit for seconds, limit in windows)


def _template_error(template: SeedSmsTemplate | None, raw_params: str) -> tuple[str, str] | None:
    if template is None or template.status != "approved":
        return "isv.SMS_TEMPLATE_ILLEGAL", "The template is not approved or does not exist."
    try:
        params = orjson.loads(raw_params or "{}")
    except orjson.JSONDecodeError:
        return "isv.INVALID_JSON_PARAM", "TemplateParam is not valid JSON."
    if not isinstance(params, dict):
        return "isv.INVALID_JSON_PARAM", "TemplateParam is not a JSON object."
    missing = [name for name in _VARIABLE.findall(template.content) if name not in params]
    if missing:
        return "isv.TEMPLATE_MISSING_PARAMETERS", f"Template variables missing: {missing}"
    if any(len(str(value)) > MAX_PARAM_LENGTH for value in params.values()):
        return "isv.PARAM_LENGTH_LIMIT", f"A variable is longer than {MAX_PARAM_LENGTH} characters."
    return None


def send_sms(state: AliyunState, query: Mapping[str, str], now: float) -> dict[str, Any]:
    phones = [p for p in query.get("PhoneNumbers", "").split(",") if p]
    if not phones or not all(_PHONE.match(p) for p in phones):
        return {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "Invalid mobile number."}
    sign = aliyun_review.current_sign(state, query.get("SignName", ""), now)
    if sign is None or sign.status != "approved":
        return {
            "Code": "isv.SMS_SIGNATURE_ILLEGAL",
            "Message": "The signature is not approved or does not exist.",
        }
    refusal = _template_error(
        aliyun_review.current_template(state, query.get("TemplateCode", ""), now),
        query.get("TemplateParam", ""),
    )
    if refusal is not None:
        return {"Code": refusal[0], "Message": refusal[1]}
    if any(_throttled(state, phone, now) for phone in phones):
        return {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "Flow control triggered for this number."}
    biz_id = f"{next(state.biz_ids)}^0"
    at = datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    for phone in phones:
        state.sent_at.setdefault(phone, deque()).append(now)
        sent = {
            "BizId": biz_id,
            "TemplateCode": query.get("TemplateCode", ""),
            "OutId": query.get("OutId", ""),
            "at": at,
        }
        state.sent_details.setdefault(phone, []).append(sent)
    return {"Code": "OK", "Message": "OK", "BizId": biz_id}


def query_send_details(state: AliyunState, query: Mapping[str, str], _: float) -> dict[str, Any]:
    """What became of the SMS sent to one phone on one day (Beijing time), or of one of them by
    ``BizId``, a page at a time, as https://help.aliyun.com/document_detail/419277.html describes
    it: ``PhoneNumber`` (one number), ``SendDate`` (yyyyMMdd, the last 30 days), ``PageSize`` (1 to
    50) and ``CurrentPage`` required; each detail has no BizId but its ``OutId``. SendStatus 3
    delivered, 2 failed (a phone in ``receipts.unreachable_phones``)."""
    phone, biz_id, day = query.get("PhoneNumber", ""), query.get("BizId"), query.get("SendDate", "")
    size, page = query.get("PageSize", ""), query.get("CurrentPage", "")
    today = datetime.now(CHINA).date()
    try:
        asked = datetime.strptime(day, "%Y%m%d").date()
        size_n, page_n = int(size), int(page)
    except ValueError:
        asked, size_n, page_n = None, 0, 0
    if (
        not _PHONE.match(phone)
        or asked is None
        or not 0 <= (today - asked).days < KEPT_DAYS
        or not 1 <= size_n <= 50
        or page_n < 1
    ):
        return {
            "Code": "isv.INVALID_PARAMETERS",
            "Message": "PhoneNumber, SendDate (yyyyMMdd, last 30 days), PageSize (1-50) and "
            "CurrentPage are required.",
        }
    unreachable = phone in state.sent_unreachable
    details = [
        {
            "PhoneNum": phone,
            "SendStatus": 2 if unreachable else 3,
            "ErrCode": "MK:0001" if unreachable else "DELIVERED",
            "TemplateCode": sent["TemplateCode"],
            "Content": "",
            "SendDate": sent["at"],
            "ReceiveDate": sent["at"],
            "OutId": sent.get("OutId", ""),
        }
        for sent in state.sent_details.get(phone, [])
        if sent["at"][:10].replace("-", "") == day and biz_id in (None, "", sent["BizId"])
    ]
    shown = details[(page_n - 1) * size_n : page_n * size_n]
    return {
        "Code": "OK",
        "Message": "OK",
        "TotalCount": len(details),
        "SmsSendDetailDTOs": {"SmsSendDetailDTO": shown},
    }


ACTIONS: dict[str, Action] = {
    "SendSms": send_sms,
    "QuerySendDetails": query_send_details,
    **aliyun_review.ACTIONS,
}


async def rpc(request: web.Request) -> web.Response:
    state: State = request.app[STATE_KEY]
    action = request.headers.get("x-acs-action", "")
    body = await request.read()
    refusal = _authentication_error(state.aliyun, request, body)
    if refusal is not None:
        return refusal
    handler = ACTIONS.get(action)
    if handler is None or request.headers.get("x-acs-version") != "2017-05-25":
        return _reply("InvalidAction.NotFound", f"Specified api {action} is not found.", 404)
    answer = handler(state.aliyun, request.query, state.clock())
    if action == "SendSms" and answer["Code"] == "OK":
        state.messages.append(
            {"channel": "aliyun_sms", "biz_id": answer["BizId"], "query": dict(request.query)}
        )
        queue_sms(state, dict(request.query), answer["BizId"])
    return _answer(answer)


async def set_status(request: web.Request) -> web.Response:
    """Sandbox-only: the review Aliyun would do, e.g. POST /__sandbox__/aliyun/signs/NAME {"status": ...}."""
    state = request.app[STATE_KEY].aliyun
    kind, name = request.match_info["kind"], request.match_info["name"]
    status = request.query.get("status", "approved")
    if status not in aliyun_review.STATUS_CODES:
        return web.json_response({"error": f"unknown status {status}"}, status=400)
    update = {"status": status, "reason": request.query.get("reason", "")}
    if kind == "signs" and name in state.signs:
        state.signs[name] = state.signs[name].model_copy(update=update)
    elif kind == "templates" and name in state.templates:
        state.templates[name] = state.templates[name].model_copy(update=update)
    else:
        return web.json_response({"error": f"no {kind} {name}"}, status=404)
    return web.json_response({"name": name, "status": status})


async def phone_code(request: web.Request) -> web.Response:
    """Sandbox-only: what the administrator's phone received from RequiredPhoneCode (its last code)."""
    state = request.app[STATE_KEY].aliyun
    code = state.phone_codes.get(request.match_info["phone"][-11:])
    if code is None:
        return web.json_response({"error": "no code was sent to that phone"}, status=404)
    return web.json_response({"code": code})


async def review_pushes(request: web.Request) -> web.Response:
    """Sandbox-only: ``?enabled=false`` stops pushing the ends of reviews (as an Aliyun account
    without SignSmsReport / TemplateSmsReport configured), ``true`` starts again."""
    state = request.app[STATE_KEY].aliyun
    state.review_pushes = request.query.get("enabled", "true") != "false"
    return web.json_response({"review_pushes": state.review_pushes})


async def access_key(request: web.Request) -> web.Response:
    """Sandbox-only: ``?enabled=false`` switches an AccessKey off (as RAM does), ``true`` on again."""
    state = request.app[STATE_KEY].aliyun
    key_id = request.match_info["key_id"]
    if key_id not in state.seed.access_keys:
        return web.json_response({"error": f"no AccessKey {key_id}"}, status=404)
    if request.query.get("enabled", "true") == "false":
        state.disabled_keys.add(key_id)
    else:
        state.disabled_keys.discard(key_id)
    return web.json_response({"access_key_id": key_id, "enabled": key_id not in state.disabled_keys})
