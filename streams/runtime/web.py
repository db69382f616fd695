"""The worker's pages: ``/metrics`` (Prometheus), ``/readyz``, and the settings a shop's events
are routed with (``/shops/{shop_id}/settings``, with the platform's bearer token only)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.shop_records import ShopTable
from streams.core.tokens import PLATFORM, Tokens
from streams.runtime.health import Readiness


async def get_metrics(_: web.Request) -> web.Response:
    """This process's metrics, in Prometheus's text format (the worker's, the admin API's, the
    receipts endpoint's)."""
    return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def pages(readiness: Readiness, shops: ShopTable, tokens: Tokens) -> web.Application:
    async def get_worker_metrics(request: web.Request) -> web.Response:
        readiness.report()  # brings the gauges up to date
        return await get_metrics(request)

    async def get_readyz(_: web.Request) -> web.Response:
        ready, body = readiness.report()
        return web.json_response(body, status=200 if ready else 503)

    async def get_shop(request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or tokens.identity(token) != PLATFORM:
            return web.json_response({"problems": ["the platform's bearer token is required"]}, status=401)
        shop_id = request.match_info["shop_id"]
        shop = shops.get(int(shop_id)) if shop_id.isascii() and shop_id.isdigit() else None
        if shop is None:
            return web.json_response({"problems": [f"shop {shop_id} has no settings"]}, status=404)
        return web.json_response(shop.model_dump(mode="json"))

    app = web.Application()
    app.add_routes(
        [
            web.get("/metrics", get_worker_metrics),
            web.get("/readyz", get_readyz),
            web.get("/shops/{shop_id}/settings", get_shop),
        ]
    )
    return app
