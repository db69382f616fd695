"""WeChat endpoints of the sandbox, answering with WeChat's own shapes and error codes."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from channels.sandbox.state import State
from channels.wechat_values import problem

STATE_KEY: web.AppKey[State] = web.AppKey("state", State)
_OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


def _error(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def stable_token(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request)
    if body is None:
        return _error(47001, "data format error")
    state.record(request.path, dict(request.query), body)
    if body.get("grant_type") != "client_credential":
        return _error(40002, "invalid grant_type")
    app = state.app(str(body.get("appid", "")))
    if app is None:
        return _error(40013, "invalid appid")
    if body.get("secret") != app.secret:
        return _error(40125, "invalid appsecret")
    token = None if body.get("force_refresh") else state.current_token(app.appid)
    token = token or state.issue_token(app.appid)
    expires_in = int(state.tokens[token].expires_at - state.clock())
    return web.json_response({"access_token": token, "expires_in": expires_in})


def _check_token(state: State, request: web.Request) -> tuple[str | None, web.Response | None]:
    """The app the token belongs to, or WeChat's answer to a bad token."""
    token = state.tokens.get(request.query.get("access_token", ""))
    if token is None:
        return None, _error(40001, "invalid credential, access_token is invalid or not latest")
    if token.expires_at <= state.clock():
        return None, _error(42001, "access_token expired")
    return token.appid, None


async def template_send(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request)
    state.record(request.path, dict(request.query), body)
    appid, refusal = _check_token(state, request)
    if refusal is not None or appid is None:
        return refusal or _error(40001, "invalid credential")
    if body is None:
        return _error(47001, "data format error")
    return _deliver(state, appid, body)


def _refusal(state: State, appid: str, body: dict[str, Any]) -> web.Response | None:
    """WeChat's answer to a send it would not deliver, checked in WeChat's order; None to deliver."""
    app = state.app(appid)
    touser = str(body.get("touser", ""))
    if app is None or not _OPENID.match(touser):
        return _error(40003, "invalid openid")
    if touser in app.unfollowed_openids:
        return _error(43004, "require subscribe")
    template = next((t for t in app.templates if t.template_id == body.get("template_id")), None)
    if template is None:
        return _error(40037, "invalid template_id")
    data = body.get("data")
    if not isinstance(data, dict):
        return _error(47003, "argument invalid! data is empty")
    for keyword in template.keywords:
        field = data.get(keyword)
        value = str(field.get("value", "")) if isinstance(field, dict) else ""
        reason = problem(keyword, value) if value else None
        if reason is not None:
            return _error(47003, f"argument invalid! data.{keyword}.value invalid: {reason}")
    return None


def _deliver(state: State, appid: str, body: dict[str, Any]) -> web.Response:
    refusal = _refusal(state, appid, body)
    if refusal is not None:
        return refusal
    client_msg_id = body.get("client_msg_id")
    if client_msg_id and (appid, client_msg_id) in state.sent_client_msg_ids:
        msgid = state.sent_client_msg_ids[(appid, client_msg_id)]
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})
    msgid = state.next_msgid()
    if client_msg_id:
        state.sent_client_msg_ids[(appid, client_msg_id)] = msgid
    state.messages.append({"channel": "wechat_oa", "appid": appid, "msgid": msgid, "body": body})
    return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})
