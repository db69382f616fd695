"""The admin API's webhook endpoints (a shop's token, its own shop; the platform's, any):

- ``GET /v1/shops/{shop_id}/webhooks``: the shop's endpoints, with whether each is failing or off;
- ``POST /v1/shops/{shop_id}/webhooks`` ``{"url": "https://...", "events": ["delivered", ...]}``:
  a new endpoint (201), with its signing ``secret``, shown this once;
- ``DELETE /v1/shops/{shop_id}/webhooks/{endpoint_id}``: removed (204);
- ``POST /v1/shops/{shop_id}/webhooks/{endpoint_id}/enable``: an endpoint switched off after a day
  of failures, on again (its failing spell forgotten).

Each change is a record of the webhooks topic (:mod:`streams.core.webhooks`), answered once Kafka
has it; the reads wait until the API has read the topic up to now, so a shop sees its own change.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from channels.webhook import UrlRefused, check_url, secret_for
from streams.api.context import (
    SHOP_ID,
    WHO,
    ApiContext,
    WebhookDesk,
    acknowledged,
    audit,
    for_shop,
    problem,
    read_body,
)
from streams.core.shops import ShopRules
from streams.core.webhooks import (
    ENDPOINTS_MOST,
    Endpoint,
    EndpointList,
    EndpointRequest,
    NewEndpoint,
    enabled_again,
    endpoint_record,
    new_endpoint,
    removal,
)
from streams.logs import fields
from streams.runtime.kafka.records import Write

READ_WAIT_SECONDS = 10.0


async def _desk(context: ApiContext) -> WebhookDesk | web.Response:
    """The webhooks' desk, read up to now; a 503 problem when it cannot be."""
    desk = context.webhooks
    if desk is None or context.recipient_key is None:
        return problem(
            503, "MALL_NOTIFY_RECIPIENT_KEY is not set on this API: webhook secrets derive from it"
        )
    try:
        await asyncio.wait_for(desk.follower.up_to_now(), READ_WAIT_SECONDS)
    except Exception:  # Kafka did not answer in time: say so, never a 500
        return problem(503, "the webhook endpoints could not be read from Kafka; try again")
    return desk


@for_shop
async def get_endpoints(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    desk = await _desk(context)
    if isinstance(desk, web.Response):
        return desk
    listed = EndpointList(endpoints=desk.endpoints.of_shop(shop.shop_id))
    return web.json_response(listed.model_dump(mode="json", exclude_none=True))


@for_shop
async def post_endpoint(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    body = await read_body(request, EndpointRequest)
    if isinstance(body, web.Response):
        return body
    desk = await _desk(context)
    if isinstance(desk, web.Response):
        return desk
    try:
        check_url(body.url, desk.allowed_hosts)
    except UrlRefused as exc:
        return problem(422, str(exc))
    if len(desk.endpoints.of_shop(shop.shop_id)) >= ENDPOINTS_MOST:
        return problem(422, f"a shop has at most {ENDPOINTS_MOST} webhook endpoints: remove one first")
    endpoint = new_endpoint(shop.shop_id, body, datetime.now(UTC))
    refusal = await _written(request, context, desk, endpoint, "added")
    if refusal is not None:
        return refusal
    assert context.recipient_key is not None  # _desk checked
    created = NewEndpoint(**endpoint.model_dump(), secret=secret_for(context.recipient_key, endpoint.id))
    return web.json_response(created.model_dump(mode="json", exclude_none=True), status=201)


@for_shop
async def delete_endpoint(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    found = await _found(request, context, shop)
    if isinstance(found, web.Response):
        return found
    desk, endpoint = found
    writes = [Write(desk.topic, key, value) for key, value in removal(shop.shop_id, endpoint.id)]
    refusal = await acknowledged(context, writes, "removal")
    if refusal is not None:
        return refusal
    _audit(request, endpoint, "removed")
    return web.Response(status=204)


@for_shop
async def enable_endpoint(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    found = await _found(request, context, shop)
    if isinstance(found, web.Response):
        return found
    desk, endpoint = found
    enabled = enabled_again(endpoint, datetime.now(UTC))
    refusal = await _written(request, context, desk, enabled, "enabled")
    if refusal is not None:
        return refusal
    return web.json_response(enabled.model_dump(mode="json", exclude_none=True))


async def _found(
    request: web.Request, context: ApiContext, shop: ShopRules
) -> tuple[WebhookDesk, Endpoint] | web.Response:
    desk = await _desk(context)
    if isinstance(desk, web.Response):
        return desk
    endpoint = desk.endpoints.get(request.match_info["endpoint_id"])
    if endpoint is None or endpoint.shop_id != shop.shop_id:
        return problem(
            404, f"shop {shop.shop_id} has no webhook endpoint {request.match_info['endpoint_id']}"
        )
    return desk, endpoint


async def _written(
    request: web.Request, context: ApiContext, desk: WebhookDesk, endpoint: Endpoint, action: str
) -> web.Response | None:
    refusal = await acknowledged(context, [Write(desk.topic, *endpoint_record(endpoint))], "endpoint")
    if refusal is None:
        _audit(request, endpoint, action)
    return refusal


def _audit(request: web.Request, endpoint: Endpoint, action: str) -> None:
    host = endpoint.url.split("://", 1)[-1].split("/", 1)[0]
    audit.info(
        f"webhook endpoint {action}",
        extra=fields(who=request[WHO], shop_id=endpoint.shop_id, endpoint=endpoint.id, host=host),
    )


ENDPOINT_ID = r"{endpoint_id:wh_[0-9a-f]{16}}"
ROUTES = [
    web.get(f"/v1/shops/{SHOP_ID}/webhooks", get_endpoints),
    web.post(f"/v1/shops/{SHOP_ID}/webhooks", post_endpoint),
    web.delete(f"/v1/shops/{SHOP_ID}/webhooks/{ENDPOINT_ID}", delete_endpoint),
    web.post(f"/v1/shops/{SHOP_ID}/webhooks/{ENDPOINT_ID}/enable", enable_endpoint),
]
