"""The worker's pages: ``/metrics`` (Prometheus), ``/readyz``, and, with the platform's bearer
token only, the settings a shop's events are routed with (``/shops/{shop_id}/settings``) and the
webhook endpoints this worker makes calls to (``/shops/{shop_id}/webhooks``: ids and whether each
is on, never a URL or a secret)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.shop_records import ShopTable
from streams.core.tokens import PLATFORM, Tokens
from streams.core.webhooks import EndpointTable
from streams.runtime.health import Readiness


async def get_metrics(_: web.Request) -> web.Response:
    """This process's metrics, in Prometheus's text format (the worker's, the admin API's, the
    receipts endpoint's)."""
    return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def _refused(request: web.Request, tokens: Tokens) -> web.Response | None:
    """The answer to a caller without the platform's bearer token (None: go on)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or tokens.identity(token) != PLATFORM:
        return web.json_response({"problems": ["the platform's bearer token is required"]}, status=401)
    return None


def _shop_id(request: web.Request) -> int | None:
    shop_id = request.match_info["shop_id"]
    return int(shop_id) if shop_id.isascii() and shop_id.isdigit() else None


def pages(
    readiness: Readiness, shops: ShopTable, tokens: Tokens, endpoints: EndpointTable | None = None
) -> web.Application:
    async def get_worker_metrics(request: web.Request) -> web.Response:
        readiness.report()  # brings the gauges up to date
        return await get_metrics(request)

    async def get_readyz(_: web.Request) -> web.Response:
        ready, body = readiness.report()
        return web.json_response(body, status=200 if ready else 503)

    async def get_shop(request: web.Request) -> web.Response:
        if (refusal := _refused(request, tokens)) is not None:
            return refusal
        shop_id = _shop_id(request)
        shop = shops.get(shop_id) if shop_id is not None else None
        if shop is None:
            problem = f"shop {request.match_info['shop_id']} has no settings"
            return web.json_response({"problems": [problem]}, status=404)
        return web.json_response(shop.model_dump(mode="json"))

    async def get_webhooks(request: web.Request) -> web.Response:
        if (refusal := _refused(request, tokens)) is not None:
            return refusal
        shop_id = _shop_id(request)
        known = endpoints.of_shop(shop_id) if endpoints is not None and shop_id is not None else []
        return web.json_response([{"id": e.id, "enabled": e.enabled} for e in known])

    app = web.Application()
    app.add_routes(
        [
            web.get("/metrics", get_worker_metrics),
            web.get("/readyz", get_readyz),
            web.get("/shops/{shop_id}/settings", get_shop),
            web.get("/shops/{shop_id}/webhooks", get_webhooks),
        ]
    )
    return app
