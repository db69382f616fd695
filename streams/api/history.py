"""The admin API's per-recipient history: ``GET /v1/history`` (platform token: every shop) and
``GET /v1/shops/{shop_id}/history`` (a shop's token: its own shop), with ``phone`` or ``openid``
and optionally ``since`` (2h, 7d, an ISO time) in the query: the newest 200 lines of the send log
(PostgreSQL) for that person."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from streams.api.context import CONTEXT, SHOP_ID, WHO, problem
from streams.api.messages import read_send_log
from streams.core.history import history_lines
from streams.core.moments import parse_moment
from streams.core.tokens import PLATFORM
from streams.ops.recipient_history import recipient_query
from streams.runtime.database import messages_statement


async def _history(request: web.Request, shop_id: int | None) -> web.Response:
    context = request.app[CONTEXT]
    if context.recipient_key is None:
        return problem(503, "MALL_NOTIFY_RECIPIENT_KEY is not set on this API: there is no history to search")
    query = request.query
    try:
        since = parse_moment(query["since"], datetime.now(UTC)) if "since" in query else None
        wanted = recipient_query(
            context.recipient_key, query.get("phone"), query.get("openid"), shop_id, since
        )
    except ValueError as exc:
        return problem(422, str(exc))
    rows = await read_send_log(request, messages_statement(wanted.messages()), "history")
    if isinstance(rows, web.Response):
        return rows
    return web.json_response([line.model_dump(mode="json") for line in history_lines(rows)])


async def every_shop(request: web.Request) -> web.Response:
    if request[WHO] != PLATFORM:
        return problem(
            403, "every shop's history needs the platform token; a shop asks /v1/shops/{shop_id}/history"
        )
    shop = request.query.get("shop")
    if shop is not None and not (shop.isascii() and shop.isdigit() and len(shop) <= 18):
        return problem(422, "shop: a shop id")
    return await _history(request, int(shop) if shop else None)


async def one_shop(request: web.Request) -> web.Response:
    return await _history(request, int(request.match_info["shop_id"]))


ROUTES = [
    web.get("/v1/history", every_shop),
    web.get(f"/v1/shops/{SHOP_ID}/history", one_shop),
]
