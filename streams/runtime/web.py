"""The worker's pages: ``/metrics`` (Prometheus), ``/readyz``, and the settings a shop's events
are routed with (``/shops/{shop_id}/settings``)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.shop_records import ShopTable
from streams.runtime.health import Readiness


def pages(readiness: Readiness, shops: ShopTable) -> web.Application:
    async def get_metrics(_: web.Request) -> web.Response:
        readiness.report()  # brings the gauges up to date
        return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def get_readyz(_: web.Request) -> web.Response:
        ready, body = readiness.report()
        return web.json_response(body, status=200 if ready else 503)

    async def get_shop(request: web.Request) -> web.Response:
        shop_id = request.match_info["shop_id"]
        shop = shops.get(int(shop_id)) if shop_id.isdigit() else None
        if shop is None:
            return web.json_response({"problems": [f"shop {shop_id} has no settings"]}, status=404)
        return web.json_response(shop.model_dump(mode="json"))

    app = web.Application()
    app.add_routes(
        [
            web.get("/metrics", get_metrics),
            web.get("/readyz", get_readyz),
            web.get("/shops/{shop_id}/settings", get_shop),
        ]
    )
    return app
