"""The admin API's send log: ``GET /v1/shops/{shop_id}/messages`` (a shop's token: its own rows
only) and ``GET /v1/messages`` (the platform's token: every shop, or ``?shop=``), newest first,
filtered by ``since``, ``until``, ``scene``, ``channel``, ``status``, ``reached``, ``phone`` or
``openid`` (through the recipients' keyed hash), ``limit``, paged by ``cursor``; and a shop's SMS
spend per day next to its balance, ``GET /v1/shops/{shop_id}/sms/spend``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from aiohttp import web
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from streams.api.context import CONTEXT, SHOP_ID, WHO, problem
from streams.core.moments import parse_moment
from streams.core.send_log import MessageQuery, after_cursor, page_of, spend_of, spend_since
from streams.core.tokens import PLATFORM
from streams.core.validation import describe
from streams.ops.recipient_history import recipient_filter
from streams.runtime import metrics
from streams.runtime.database import Statement, fetch_async, messages_statement, spend_statement

FILTERS = ("scene", "channel", "status", "reached", "limit")


def _query(request: web.Request, shop_id: int | None) -> MessageQuery:
    """The page asked for; ValueError (or pydantic's ValidationError) naming what is wrong."""
    asked = request.query  # (a parameter the document does not give is refused before: app.known_query)
    now = datetime.now(UTC)
    return MessageQuery.model_validate(
        {name: asked[name] for name in FILTERS if name in asked}
        | {
            "shop_id": shop_id,
            "since": parse_moment(asked["since"], now) if "since" in asked else None,
            "until": parse_moment(asked["until"], now) if "until" in asked else None,
            "recipient_hash": _recipient(request),
            "after": after_cursor(asked["cursor"]) if "cursor" in asked else None,
        }
    )


def _recipient(request: web.Request) -> str | None:
    phone, openid = request.query.get("phone"), request.query.get("openid")
    if phone is None and openid is None:
        return None
    key = request.app[CONTEXT].recipient_key
    if key is None:
        raise LookupError("MALL_NOTIFY_RECIPIENT_KEY is not set on this API: recipients cannot be searched")
    return recipient_filter(key, phone, openid)


async def _page(request: web.Request, shop_id: int | None) -> web.Response:
    try:
        query = _query(request, shop_id)
    except ValidationError as exc:
        return problem(422, describe(exc))
    except LookupError as exc:
        return problem(503, str(exc))
    except ValueError as exc:
        return problem(422, str(exc))

    rows = await read_send_log(request, messages_statement(query), "messages")
    if isinstance(rows, web.Response):
        return rows
    return web.json_response(page_of(rows, query.limit).model_dump(mode="json"))


async def read_send_log(
    request: web.Request, statement: Statement, what: str
) -> list[dict[str, Any]] | web.Response:
    """The rows of a read of the send log, timed; a 503 problem when there is no database or it
    does not answer (never a 500)."""
    database = request.app[CONTEXT].database
    if database is None:
        return problem(503, "no database is configured on this API (MALL_NOTIFY_DATABASE_URL): no send log")
    try:
        with metrics.SEND_LOG_QUERY_SECONDS.labels(what).time():
            return await fetch_async(database, statement)
    except (psycopg.Error, PoolTimeout) as exc:
        return problem(503, f"the send log's database did not answer ({type(exc).__name__}); try again")


async def shop_messages(request: web.Request) -> web.Response:
    return await _page(request, int(request.match_info["shop_id"]))


async def every_shop(request: web.Request) -> web.Response:
    if request[WHO] != PLATFORM:
        return problem(
            403, "every shop's send log needs the platform token; a shop asks /v1/shops/{shop_id}/messages"
        )
    shop = request.query.get("shop")
    if shop is not None and not (shop.isascii() and shop.isdigit() and 0 < len(shop) <= 18):
        return problem(422, "shop: a shop id")
    return await _page(request, int(shop) if shop else None)


async def shop_spend(request: web.Request) -> web.Response:
    """The shop's SMS balance, and the SMS it sent each day (``days``, 7 by default)."""
    shop_id, now = int(request.match_info["shop_id"]), datetime.now(UTC)
    days = request.query.get("days", "7")
    try:
        since = spend_since(now, int(days) if days.isascii() and days.isdigit() else 0)
    except ValueError as exc:
        return problem(422, str(exc))
    rows = await read_send_log(request, spend_statement(shop_id, since), "spend")
    if isinstance(rows, web.Response):
        return rows
    spend = spend_of(request.app[CONTEXT].sms.book.balance(shop_id), rows, since, now)
    return web.json_response(spend.model_dump(mode="json"))


ROUTES = [
    web.get(f"/v1/shops/{SHOP_ID}/sms/spend", shop_spend),
    web.get("/v1/messages", every_shop),
    web.get(f"/v1/shops/{SHOP_ID}/messages", shop_messages),
]
