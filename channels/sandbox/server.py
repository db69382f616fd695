"""The provider sandbox: a real HTTP server speaking WeChat's wire format, with fault injection.

Provider endpoints live at the providers' own paths, so pointing ``MALL_NOTIFY_WECHAT_API_BASE``
at the sandbox or at ``https://api.weixin.qq.com`` is the only difference. Inspection and fault
control live under ``/__sandbox__/``:

- ``GET /__sandbox__/health``
- ``GET /__sandbox__/requests`` every call received (secrets and tokens masked)
- ``GET /__sandbox__/messages`` every message accepted for delivery
- ``POST /__sandbox__/faults`` add a :class:`~channels.sandbox.state.Fault`; ``DELETE`` clears them
- ``POST /__sandbox__/tokens/expire`` expire every issued access token
- ``POST /__sandbox__/reset`` forget requests, messages, tokens and faults
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from channels.sandbox import wechat
from channels.sandbox.state import Fault, State

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INSPECT = "/__sandbox__"


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(INSPECT):
        return await handler(request)
    fault = request.app[wechat.STATE_KEY].take_fault(request.path)
    if fault is None:
        return await handler(request)
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    if fault.http_status is not None:
        return web.Response(status=fault.http_status, text="injected fault")
    if fault.errcode is not None:
        return web.json_response({"errcode": fault.errcode, "errmsg": "injected fault"})
    return await handler(request)


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def list_requests(request: web.Request) -> web.Response:
    state = request.app[wechat.STATE_KEY]
    path = request.query.get("path")
    return web.json_response([r for r in state.requests if path is None or r["path"] == path])


async def list_messages(request: web.Request) -> web.Response:
    return web.json_response(request.app[wechat.STATE_KEY].messages)


async def add_fault(request: web.Request) -> web.Response:
    try:
        fault = Fault.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    request.app[wechat.STATE_KEY].faults.append(fault)
    return web.json_response(fault.model_dump(), status=201)


async def clear_faults(request: web.Request) -> web.Response:
    request.app[wechat.STATE_KEY].faults.clear()
    return web.json_response({"faults": 0})


async def expire_tokens(request: web.Request) -> web.Response:
    request.app[wechat.STATE_KEY].expire_tokens()
    return web.json_response({"expired": True})


async def reset(request: web.Request) -> web.Response:
    state = request.app[wechat.STATE_KEY]
    for collection in (state.requests, state.messages, state.faults, state.tokens, state.sent_client_msg_ids):
        collection.clear()
    return web.json_response({"reset": True})


def build_app(state: State) -> web.Application:
    app = web.Application(middlewares=[inject_faults])
    app[wechat.STATE_KEY] = state
    app.router.add_post("/cgi-bin/stable_token", wechat.stable_token)
    app.router.add_post("/cgi-bin/message/template/send", wechat.template_send)
    app.router.add_get(f"{INSPECT}/health", health)
    app.router.add_get(f"{INSPECT}/requests", list_requests)
    app.router.add_get(f"{INSPECT}/messages", list_messages)
    app.router.add_post(f"{INSPECT}/faults", add_fault)
    app.router.add_delete(f"{INSPECT}/faults", clear_faults)
    app.router.add_post(f"{INSPECT}/tokens/expire", expire_tokens)
    app.router.add_post(f"{INSPECT}/reset", reset)
    return app


def serve(seed: Path, host: str, port: int) -> None:
    """Run the sandbox until interrupted."""
    web.run_app(build_app(State.from_file(seed)), host=host, port=port, print=None, access_log=None)
