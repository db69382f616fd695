"""The admin API's Mini Program subscription endpoints (a shop's token, its own shop):

- ``GET /v1/shops/{shop_id}/mp/subscribe-templates?scenes=a,b``: the template id the mall's Mini
  Program asks the buyer for (``wx.requestSubscribeMessage``), per scene the shop sends there;
- ``POST /v1/shops/{shop_id}/mp/subscriptions``: the buyer's answers, as the mall's backend got them
  from its front end; published as a ``mp_subscription.answered`` event on its topic, the same path
  as when the backend publishes it itself (:mod:`streams.core.mp_subscriptions`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from channels.base import ChannelName
from streams.api.bodies import Answered, SubscribeTemplates
from streams.api.context import SHOP_ID, WHO, ApiContext, acknowledged, for_shop, problem, read_body
from streams.core.events import MpSubscriptionAnswered
from streams.core.mp_subscriptions import ANSWER_TYPE, answered_event, subscribe_templates
from streams.core.recipients import person_key
from streams.core.shops import ShopRules
from streams.logs import fields, get_logger
from streams.runtime.kafka.records import Write

log = get_logger("api")


@for_shop
async def get_subscribe_templates(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    asked = request.query.get("scenes")
    scenes = [scene for scene in asked.split(",") if scene] if asked is not None else list(shop.scenes)
    try:
        templates, not_offered = subscribe_templates(shop, context.catalog, scenes)
    except ValueError as exc:
        return problem(422, str(exc))
    return web.json_response(SubscribeTemplates(templates=templates, not_offered=not_offered).model_dump())


@for_shop
async def post_answers(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    body = await read_body(request, MpSubscriptionAnswered)
    if isinstance(body, web.Response):
        return body
    if context.mp_answers_topic is None:
        return problem(503, f"no event topic takes {ANSWER_TYPE} (config/topics.yaml)")
    event_id, event = answered_event(shop.shop_id, body, "/mall-notify/api", datetime.now(UTC))
    key = person_key(context.recipient_key, ChannelName.WECHAT_MP, body.openid)
    refusal = await acknowledged(context, [Write(context.mp_answers_topic, key, event)], "answers")
    if refusal is not None:
        return refusal
    log.info(
        "subscription answers published",
        extra=fields(who=request[WHO], shop_id=shop.shop_id, event_id=event_id),
    )
    return web.json_response(Answered(event_id=event_id).model_dump(), status=202)


ROUTES = [
    web.get(f"/v1/shops/{SHOP_ID}/mp/subscribe-templates", get_subscribe_templates),
    web.post(f"/v1/shops/{SHOP_ID}/mp/subscriptions", post_answers),
]
