"""A merchant's own webhook receiver, played by the sandbox: ``POST /merchant/hooks/{name}`` takes
a call as a merchant's system would (answers 200), and keeps it for inspection at
``GET /__sandbox__/hooks/{name}``: when it came, its headers of ours and its body as sent (the
caller's signature is checked by whoever holds the endpoint's secret, as a merchant would).

It is an ordinary sandbox path, so the faults play a merchant's endpoint misbehaving: failing
(``{"target": "/merchant/hooks/a", "http_status": 500, "count": 2}``), slow (``latency_ms``),
refusing for good (``http_status: 410``), dropping the connection (``reset``).
"""

from __future__ import annotations

import time

from aiohttp import web

from channels.sandbox.wechat import STATE_KEY
from channels.webhook import EVENT_HEADER, ID_HEADER, SIGNATURE_HEADER

HOOKS = "/merchant/hooks"


async def take_call(request: web.Request) -> web.Response:
    body = await request.read()
    request.app[STATE_KEY].hooks.append(
        {
            "name": request.match_info["name"],
            "at": time.time(),
            "event": request.headers.get(EVENT_HEADER),
            "id": request.headers.get(ID_HEADER),
            "signature": request.headers.get(SIGNATURE_HEADER),
            "content_type": request.headers.get("Content-Type"),
            "body": body.decode(errors="replace"),
        }
    )
    return web.json_response({"ok": True})


async def list_calls(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return web.json_response([call for call in request.app[STATE_KEY].hooks if call["name"] == name])


def routes(inspect: str) -> list[web.RouteDef]:
    return [
        web.post(f"{HOOKS}/{{name}}", take_call),
        web.get(f"{inspect}/hooks/{{name}}", list_calls),
    ]
