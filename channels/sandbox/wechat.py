"""WeChat endpoints of the sandbox, answering with WeChat's own shapes and error codes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from channels.base import ChannelName
from channels.sandbox.pushes import queue_wechat
from channels.sandbox.state import SeedTemplate, State
from channels.wechat_values import problem, shown

STATE_KEY: web.AppKey[State] = web.AppKey("state", State)
_OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
MP_STATES = frozenset({"developer", "trial", "formal"})
Handler = Callable[[State, str, dict[str, Any]], web.Response]


def _error(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


def _ok(**fields: Any) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **fields})


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _form(request: web.Request) -> dict[str, Any] | None:
    """A form-encoded body (None for anything else, JSON included)."""
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    fields = await request.post()
    return {key: fields.getall(key) if key == "kidList" else fields.get(key) for key in fields}


async def stable_token(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request)
    if body is None:
        return _error(47001, "data format error")
    if body.get("grant_type") != "client_credential":
        return _error(40002, "invalid grant_type")
    app = state.wechat.apps.get(str(body.get("appid", "")))
    if app is None:
        return _error(40013, "invalid appid")
    if body.get("secret") != app.secret:
        return _error(40125, "invalid appsecret")
    token = None if body.get("force_refresh") else state.current_token(app.appid)
    token = token or state.issue_token(app.appid)
    expires_in = int(state.wechat.tokens[token].expires_at - state.clock())
    return web.json_response({"access_token": token, "expires_in": expires_in})


def with_token(handler: Handler, form: bool = False) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Check the access token, parse the body (JSON, or ``form``-encoded where WeChat documents
    that: its repeated ``kidList`` as a list), then run ``handler(state, appid, body)``."""

    async def endpoint(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        if request.method != "POST":
            body: dict[str, Any] | None = {}
        else:
            body = await _form(request) if form else await _body(request)
        token = state.wechat.tokens.get(request.query.get("access_token", ""))
        if token is None:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        if token.expires_at <= state.clock():
            return _error(42001, "access_token expired")
        if body is None:
            return _error(47001, "data format error")
        return handler(state, token.appid, body)

    return endpoint


def _data_problem(template: SeedTemplate, data: object, channel: ChannelName) -> web.Response | None:
    """47003 for a value of the wrong type; on the Official Account a value too long or with a line
    break is not refused but cut (see :func:`shown`), on the Mini Program it is refused."""
    if not isinstance(data, dict):
        return _error(47003, "argument invalid! data is empty")
    for keyword in template.keywords:
        field = data.get(keyword)
        value = shown(str(field.get("value", "")), channel) if isinstance(field, dict) else ""
        reason = problem(keyword, value) if value else None
        if reason is not None:
            return _error(47003, f"argument invalid! data.{keyword}.value invalid: {reason}")
    return None


def _template_refusal(
    state: State, appid: str, body: dict[str, Any], channel: ChannelName
) -> tuple[SeedTemplate | None, web.Response | None]:
    touser = str(body.get("touser", ""))
    if not _OPENID.match(touser):
        return None, _error(40003, "invalid openid")
    template = state.wechat.templates.get(appid, {}).get(str(body.get("template_id")))
    if template is None:
        return None, _error(40037, "invalid template_id")
    return template, _data_problem(template, body.get("data"), channel)


def _accept(state: State, channel: str, appid: str, body: dict[str, Any]) -> web.Response:
    msgid = state.next_msgid()
    message: dict[str, Any] = {"channel": channel, "appid": appid, "msgid": msgid, "body": body}
    data = body.get("data")
    if channel == "wechat_oa" and isinstance(data, dict):  # what the buyer sees of each field
        message["shown"] = {
            key: shown(str(field.get("value", "")), ChannelName.WECHAT_OA)
            for key, field in data.items()
            if isinstance(field, dict)
        }
    state.messages.append(message)
    queue_wechat(state, channel, appid, body, msgid)
    return _ok(msgid=msgid)


CLIENT_MSG_ID_SECONDS = 600.0
"""how long WeChat drops a repeated client_msg_id"""


def template_send(state: State, appid: str, body: dict[str, Any]) -> web.Response:
    """OA template message. ``client_msg_id`` de-duplicates as the template message page documents
    it: one message per openid and ``client_msg_id`` within 10 minutes (a repeat is answered with
    the first one's msgid); after that, no promise (the sandbox sends it again)."""
    openid = str(body.get("touser", ""))
    if openid in state.wechat.apps[appid].unfollowed_openids:
        return _error(43004, "require subscribe")
    _, refusal = _template_refusal(state, appid, body, ChannelName.WECHAT_OA)
    if refusal is not None:
        return refusal
    client_msg_id = str(body.get("client_msg_id") or "")
    sent, now = state.wechat.sent_client_msg_ids, state.clock()
    first = sent.get((appid, openid, client_msg_id)) if client_msg_id else None
    if first is not None and now - first[1] < CLIENT_MSG_ID_SECONDS:
        return _ok(msgid=first[0])
    response = _accept(state, "wechat_oa", appid, body)
    if client_msg_id:
        sent[(appid, openid, client_msg_id)] = (state.messages[-1]["msgid"], now)
    return response


def subscribe_send(state: State, appid: str, body: dict[str, Any]) -> web.Response:
    """MP subscribe message: each send uses up one of the user's accepted subscriptions."""
    if body.get("miniprogram_state", "formal") not in MP_STATES:
        return _error(47003, "argument invalid! miniprogram_state invalid")
    page = body.get("page")
    app = state.wechat.apps[appid]
    if page and str(page).split("?")[0] not in app.pages:
        return _error(41030, "invalid page")
    _, refusal = _template_refusal(state, appid, body, ChannelName.WECHAT_MP)
    if refusal is not None:
        return refusal
    key = (appid, str(body["touser"]), str(body["template_id"]))
    if state.wechat.subscriptions.get(key, 0) <= 0:
        return _error(43101, "user refuse to accept the msg")
    state.wechat.subscriptions[key] -= 1
    return _accept(state, "wechat_mp", appid, body)


def add_template(state: State, appid: str, body: dict[str, Any]) -> web.Response:
    """``api_add_template`` (https://developers.weixin.qq.com/doc/service/api/notify/template/api_addtemplate):
    ``template_id_short`` and ``keyword_name_list``, the names of the keywords wanted in order; an
    empty list, or a name the template does not have (a keyword's code, say), is 40246 for a
    category template (a numeric id); an industry template (``OPENTM…``) without names is taken
    whole. At most 25 templates per OA (45026)."""
    library = {t.short_id: t for t in state.seed.template_library}
    source = library.get(str(body.get("template_id_short", "")))
    if source is None:
        return _error(40037, "invalid template_id")
    names = body.get("keyword_name_list") or []
    by_name = {name: code for code, name in source.keywords.items()}
    named = isinstance(names, list) and all(isinstance(name, str) and name in by_name for name in names)
    if not named or len(set(names)) != len(names) or (not names and source.short_id.isdigit()):
        return _error(40246, "keyword name invalid")
    codes = [by_name[name] for name in names] if names else list(source.keywords)
    templates = state.wechat.templates.setdefault(appid, {})
    if len(templates) >= state.seed.max_oa_templates:
        return _error(45026, "template size out of limit")
    template_id = secrets.token_urlsafe(32)[:43]
    templates[template_id] = SeedTemplate(template_id=template_id, title=source.title, keywords=codes)
    return _ok(template_id=template_id)


def list_templates(state: State, appid: str, _: dict[str, Any]) -> web.Response:
    """``get_all_private_template``."""
    templates = state.wechat.templates.get(appid, {}).values()
    listing = [
        {
            "template_id": t.template_id,
            "title": t.title,
            "content": "\n".join(f"{k}:{{{{{k}.DATA}}}}" for k in t.keywords),
        }
        for t in templates
    ]
    return web.json_response({"template_list": listing})


def delete_template(state: State, appid: str, body: dict[str, Any]) -> web.Response:
    """``del_private_template``."""
    if state.wechat.templates.get(appid, {}).pop(str(body.get("template_id")), None) is None:
        return _error(40037, "invalid template_id")
    return _ok()


def get_industry(state: State, appid: str, _: dict[str, Any]) -> web.Response:
    """``template/get_industry``: the OA's primary and secondary industry."""
    industries = state.wechat.apps[appid].industries
    if not industries:
        return _error(40102, "invalid industry id: the account has not set its industry")
    names = ("primary_industry", "secondary_industry")
    return web.json_response({name: i.model_dump() for name, i in zip(names, industries, strict=False)})


def _mini_program(state: State, appid: str) -> web.Response | None:
    if state.wechat.apps[appid].kind != "mp":
        return _error(48001, "api unauthorized: not a Mini Program")
    return None


def get_category(state: State, appid: str, _: dict[str, Any]) -> web.Response:
    """``wxaapi/newtmpl/getcategory``: the Mini Program's service categories."""
    refusal = _mini_program(state, appid)
    if refusal is not None:
        return refusal
    categories = state.wechat.apps[appid].categories
    return _ok(data=[{"id": 600 + number, "name": name} for number, name in enumerate(categories)])


def add_subscribe_template(state: State, appid: str, body: dict[str, Any]) -> web.Response:
    """``wxaapi/newtmpl/addtemplate``
    (https://developers.weixin.qq.com/miniprogram/dev/api-backend/open-api/subscribe-message/subscribeMessage.addTemplate.html):
    a form-encoded body (JSON is not supported: 47001), a library title ``tid`` (200014) with 2 to 5
    of its keywords by id, ``kidList`` repeated (200020), and an optional ``sceneDesc`` of at most
    15 characters (200021), into the MP's own templates (at most 25)."""
    refusal = _mini_program(state, appid)
    if refusal is not None:
        return refusal
    library = {t.tid: t for t in state.seed.subscribe_library}
    source = library.get(str(body.get("tid", "")))
    if source is None:
        return _error(200014, "tid does not exist")
    by_id = {int("".join(c for c in k if c.isdigit())): k for k in source.keywords}
    try:
        kids = [int(kid) for kid in body.get("kidList", [])]
    except (TypeError, ValueError):
        kids = []
    if not 2 <= len(kids) <= 5 or not all(k in by_id for k in kids):
        return _error(200020, "kidList invalid")
    if len(str(body.get("sceneDesc", ""))) > 15:
        return _error(200021, "sceneDesc invalid")
    templates = state.wechat.templates.setdefault(appid, {})
    if len(templates) >= state.seed.max_oa_templates:
        return _error(200012, "the number of personal templates has reached the limit of 25")
    template_id = secrets.token_urlsafe(32)[:43]
    keywords = [by_id[k] for k in kids]
    templates[template_id] = SeedTemplate(template_id=template_id, title=source.title, keywords=keywords)
    return _ok(priTmplId=template_id)


def list_subscribe_templates(state: State, appid: str, _: dict[str, Any]) -> web.Response:
    """``wxaapi/newtmpl/gettemplate``."""
    refusal = _mini_program(state, appid)
    if refusal is not None:
        return refusal
    listing = [
        {
            "priTmplId": t.template_id,
            "title": t.title,
            "content": "\n".join(f"{k}:{{{{{k}.DATA}}}}" for k in t.keywords),
            "example": "",
            "type": 2,
        }
        for t in state.wechat.templates.get(appid, {}).values()
    ]
    return _ok(data=listing)


def delete_subscribe_template(state: State, appid: str, body: dict[str, Any]) -> web.Response:
    """``wxaapi/newtmpl/deltemplate``."""
    refusal = _mini_program(state, appid)
    if refusal is not None:
        return refusal
    if state.wechat.templates.get(appid, {}).pop(str(body.get("priTmplId")), None) is None:
        return _error(40037, "invalid template id")
    return _ok()


def routes() -> list[web.RouteDef]:
    return [
        web.post("/cgi-bin/stable_token", stable_token),
        web.post("/cgi-bin/message/template/send", with_token(template_send)),
        web.post("/cgi-bin/message/subscribe/send", with_token(subscribe_send)),
        web.post("/cgi-bin/template/api_add_template", with_token(add_template)),
        web.get("/cgi-bin/template/get_all_private_template", with_token(list_templates)),
        web.post("/cgi-bin/template/del_private_template", with_token(delete_template)),
        web.get("/cgi-bin/template/get_industry", with_token(get_industry)),
        web.get("/wxaapi/newtmpl/getcategory", with_token(get_category)),
        web.post("/wxaapi/newtmpl/addtemplate", with_token(add_subscribe_template, form=True)),
        web.get("/wxaapi/newtmpl/gettemplate", with_token(list_subscribe_templates)),
        web.post("/wxaapi/newtmpl/deltemplate", with_token(delete_subscribe_template)),
    ]
