"""The provider sandbox: a real HTTP server speaking WeChat's and Aliyun SMS's wire formats,
with fault injection and inspection.

Provider endpoints live at the providers' own paths (WeChat's ``/cgi-bin/...``, Aliyun's RPC
``POST /``), so pointing a channel at the sandbox or at the real provider is configuration only.
Inspection and control live under ``/__sandbox__/``:

- ``GET  health``; ``GET requests`` (every call, secrets and tokens masked); ``GET messages``
  (every message accepted: OA, MP and SMS); ``GET stats`` (how many of each, for load runs)
- ``POST faults`` add a :class:`~channels.sandbox.state.Fault` (error code, HTTP status, latency,
  an answer held after the call was carried out, connection reset, rate, count, outage window);
  ``GET faults``; ``DELETE faults``
- ``POST tokens/expire`` expire every issued WeChat access token
- ``POST wechat/subscriptions`` grant MP users subscriptions ``{appid, openid | openids, template_id, count}``
- ``POST aliyun/{signs|templates}/{name}?status=approved|rejected|reviewing`` Aliyun's review
- ``POST reset`` back to the seed
- ``POST receipts`` change their delay and loss ``{"delay_seconds", "loss_rate"}``;
  ``GET pushed``: the receipts pushed to ``--receipts-url`` (see :mod:`channels.sandbox.pushes`)
- ``GET hooks/{name}``: the webhook calls the merchant's endpoint ``POST /merchant/hooks/{name}``
  took (see :mod:`channels.sandbox.merchant`)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from channels.sandbox import aliyun, contracts, merchant, wechat
from channels.sandbox.pushes import pushing
from channels.sandbox.state import Fault, State, masked

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INSPECT = "/__sandbox__"


def fault_target(request: web.Request) -> str:
    return request.headers.get("x-acs-action") or request.path


def _faulty_answer(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    if fault.reset and request.transport is not None:
        request.transport.abort()
        return web.Response(status=500)
    if fault.aliyun_code is not None:
        body = {"Code": fault.aliyun_code, "Message": "injected fault", "RequestId": "SANDBOX"}
        return web.json_response(body, status=fault.http_status or 200)
    if fault.http_status is not None:
        return web.Response(status=fault.http_status, text="injected fault")
    if fault.errcode is not None:
        return web.json_response({"errcode": fault.errcode, "errmsg": "injected fault"})
    return None


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(INSPECT):
        return await handler(request)
    state = request.app[wechat.STATE_KEY]
    target = fault_target(request)
    body = await _recorded_body(request)
    state.record(target, dict(request.query), body)
    fault = state.take_fault(target)
    if fault is None:
        return await _within_contract(request, handler, target, body)
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    answer = _faulty_answer(request, fault) or await handler(request)
    if fault.hold_ms:
        await asyncio.sleep(fault.hold_ms / 1000)
    return answer


async def _recorded_body(request: web.Request) -> object:
    """The body as JSON, or a form's fields (each its list of values)."""
    raw = await request.read()  # cached: the handler reads it again
    if request.content_type == "application/x-www-form-urlencoded":
        return parse_qs(raw.decode(errors="replace"), keep_blank_values=True)
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return {"unparsed_bytes": len(raw)}


async def _within_contract(
    request: web.Request, handler: Handler, target: str, body: object
) -> web.StreamResponse:
    """The provider's refusal of a request that breaks its contract; otherwise the answer, noted
    when the sandbox's own answer breaks the response's contract (see :mod:`contracts`)."""
    state = request.app[wechat.STATE_KEY]
    aliyun_call = "x-acs-action" in request.headers
    broken = contracts.problems(target, "request", dict(request.query) if aliyun_call else body)
    if broken:
        state.breaches.append({"target": target, "by": "caller", "problems": broken})
        if aliyun_call:
            refused = {"Code": "isv.INVALID_PARAMETERS", "Message": "; ".join(broken), "RequestId": "SANDBOX"}
            return web.json_response(refused)
        return web.json_response({"errcode": 47001, "errmsg": f"data format error: {broken[0]}"})
    answer = await handler(request)
    body_sent = answer.body if isinstance(answer, web.Response) else None
    if isinstance(body_sent, bytes) and body_sent and answer.content_type == "application/json":
        said = contracts.problems(target, "response", orjson.loads(body_sent))
        if said:
            state.breaches.append({"target": target, "by": "sandbox", "problems": said})
    return answer


class Subscription(BaseModel):
    """Acceptances of a Mini Program template, as WeChat records them when users accept it: for
    ``openid``, or for each of ``openids`` (many users at once, for load tests)."""

    appid: str
    openid: str | None = None
    openids: list[str] = []
    template_id: str
    count: int = 1


async def _model(request: web.Request, model: type[BaseModel]) -> BaseModel | web.Response:
    try:
        return model.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return web.json_response({"error": str(exc)}, status=400)


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def list_breaches(request: web.Request) -> web.Response:
    return web.json_response(request.app[wechat.STATE_KEY].breaches)


async def list_requests(request: web.Request) -> web.Response:
    target = request.query.get("path")
    calls = request.app[wechat.STATE_KEY].requests
    return web.json_response([masked(r) for r in calls if target is None or r["path"] == target])


async def list_messages(request: web.Request) -> web.Response:
    channel = request.query.get("channel")
    messages = request.app[wechat.STATE_KEY].messages
    return web.json_response([m for m in messages if channel is None or m["channel"] == channel])


async def stats(request: web.Request) -> web.Response:
    state = request.app[wechat.STATE_KEY]
    return web.json_response(
        {
            "requests": Counter(call["path"] for call in state.requests),
            "messages": Counter(message["channel"] for message in state.messages),
        }
    )


async def add_fault(request: web.Request) -> web.Response:
    fault = await _model(request, Fault)
    if isinstance(fault, web.Response):
        return fault
    added = request.app[wechat.STATE_KEY].add_fault(fault)  # type: ignore[arg-type]
    return web.json_response(added.model_dump(), status=201)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response([f.model_dump() for f in request.app[wechat.STATE_KEY].faults])


async def clear_faults(request: web.Request) -> web.Response:
    request.app[wechat.STATE_KEY].faults.clear()
    return web.json_response({"faults": 0})


async def expire_tokens(request: web.Request) -> web.Response:
    request.app[wechat.STATE_KEY].expire_tokens()
    return web.json_response({"expired": True})


class NewSecret(BaseModel):
    secret: str


async def reset_secret(request: web.Request) -> web.Response:
    """As the WeChat console's 重置 AppSecret: from now on only ``secret`` gets a token."""
    body = await _model(request, NewSecret)
    if not isinstance(body, NewSecret):
        return body  # type: ignore[return-value]
    state = request.app[wechat.STATE_KEY]
    appid = request.match_info["appid"]
    app = state.wechat.apps.get(appid)
    if app is None:
        return web.json_response({"error": f"no app {appid}"}, status=404)
    state.wechat.apps[appid] = app.model_copy(update={"secret": body.secret})
    return web.json_response({"appid": appid, "reset": True})


async def grant_subscription(request: web.Request) -> web.Response:
    grant = await _model(request, Subscription)
    if isinstance(grant, web.Response):
        return grant
    assert isinstance(grant, Subscription)
    subscriptions = request.app[wechat.STATE_KEY].wechat.subscriptions
    remaining = {}
    for openid in [*grant.openids, *([grant.openid] if grant.openid else [])]:
        key = (grant.appid, openid, grant.template_id)
        remaining[openid] = subscriptions[key] = subscriptions.get(key, 0) + grant.count
    return web.json_response({"remaining": remaining[grant.openid] if grant.openid else len(remaining)})


async def reset(request: web.Request) -> web.Response:
    request.app[wechat.STATE_KEY].reset()
    return web.json_response({"reset": True})


class ReceiptChange(BaseModel):
    delay_seconds: float | None = None
    loss_rate: float | None = None


async def change_receipts(request: web.Request) -> web.Response:
    """Change how receipts are pushed: ``{"delay_seconds": 5, "loss_rate": 1.0}``."""
    state = request.app[wechat.STATE_KEY]
    try:
        change = ReceiptChange.model_validate_json(await request.read())
        receipts = state.seed.receipts.model_copy(update=change.model_dump(exclude_none=True))
        receipts = type(receipts).model_validate(receipts.model_dump())  # checked like the seed
    except ValidationError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    state.seed = state.seed.model_copy(update={"receipts": receipts})
    return web.json_response(receipts.model_dump(include={"delay_seconds", "loss_rate"}))


async def list_pushed(request: web.Request) -> web.Response:
    """The receipts pushed so far, with the answer each got."""
    return web.json_response(request.app[wechat.STATE_KEY].pushed)


def build_app(state: State, faults: Iterable[Fault] = ()) -> web.Application:
    app = web.Application(middlewares=[inject_faults])
    app[wechat.STATE_KEY] = state
    app.cleanup_ctx.append(lambda app: pushing(app, state))
    for fault in faults:
        state.add_fault(fault)
    app.add_routes(wechat.routes())
    app.router.add_post("/", aliyun.rpc)
    app.add_routes(merchant.routes(INSPECT))
    app.add_routes(
        [
            web.get(f"{INSPECT}/health", health),
            web.get(f"{INSPECT}/requests", list_requests),
            web.get(f"{INSPECT}/contract-breaches", list_breaches),
            web.get(f"{INSPECT}/messages", list_messages),
            web.get(f"{INSPECT}/stats", stats),
            web.post(f"{INSPECT}/faults", add_fault),
            web.get(f"{INSPECT}/faults", list_faults),
            web.delete(f"{INSPECT}/faults", clear_faults),
            web.post(f"{INSPECT}/tokens/expire", expire_tokens),
            web.post(f"{INSPECT}/wechat/apps/{{appid}}/secret", reset_secret),
            web.post(f"{INSPECT}/wechat/subscriptions", grant_subscription),
            web.post(f"{INSPECT}/aliyun/{{kind:signs|templates}}/{{name}}", aliyun.set_status),
            web.get(f"{INSPECT}/aliyun/phone-codes/{{phone}}", aliyun.phone_code),
            web.post(f"{INSPECT}/aliyun/review-pushes", aliyun.review_pushes),
            web.post(f"{INSPECT}/aliyun/access-keys/{{key_id}}", aliyun.access_key),
            web.post(f"{INSPECT}/reset", reset),
            web.get(f"{INSPECT}/pushed", list_pushed),
            web.post(f"{INSPECT}/receipts", change_receipts),
        ]
    )
    return app
