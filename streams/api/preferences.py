"""The admin API's buyer preferences (a shop's token for its own shop; the platform's token for a
choice that holds in every shop):

- ``PUT /v1/shops/{shop_id}/buyers/{user_id}/preferences``: what the buyer now refuses (categories,
  channels), replacing what was said before; published as a ``preferences.changed`` event keyed by
  the buyer, the same path as when the mall publishes it itself (:mod:`streams.core.buyer_choices`);
- ``GET`` the same path: what the buyer refuses in this shop and in the whole mall, from the send
  log's database (the send-log lane keeps it there, a moment after the event).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from streams.api.bodies import ChoicesRequest, ChoicesSaved
from streams.api.context import SHOP_ID, WHO, ApiContext, acknowledged, for_shop, problem, read_body
from streams.api.messages import read_send_log
from streams.core.buyer_choices import PREFERENCES_TYPE, buyer_choices, choices_summary, preferences_event
from streams.core.events import PreferencesChanged
from streams.core.shops import ShopRules
from streams.core.tokens import PLATFORM
from streams.logs import fields, get_logger
from streams.runtime.database import choices_statement
from streams.runtime.kafka.records import Write

log = get_logger("api")
USER_ID = r"{user_id:[A-Za-z0-9_.:-]{1,200}}"
"""the mall's user id of a buyer (no slash: one path, one buyer)"""


@for_shop
async def put_preferences(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    body = await read_body(request, ChoicesRequest)
    if isinstance(body, web.Response):
        return body
    if body.scope == "platform" and request[WHO] != PLATFORM:
        return problem(403, "scope platform: only the platform's token speaks for every shop")
    if context.preferences_topic is None:
        return problem(503, f"no event topic takes {PREFERENCES_TYPE} (config/topics.yaml)")
    changed = PreferencesChanged.model_validate(
        {
            **body.model_dump(),
            "user_id": request.match_info["user_id"],
            "changed_at": datetime.now(UTC).isoformat(),
        }
    )
    event_id, event = preferences_event(shop.shop_id, changed, "/mall-notify/api")
    write = Write(context.preferences_topic, changed.user_id.encode(), event)
    refusal = await acknowledged(context, [write], "preferences")
    if refusal is not None:
        return refusal
    log.info(
        "buyer preferences published", extra=fields(who=request[WHO], shop_id=shop.shop_id, event_id=event_id)
    )
    saved = ChoicesSaved(event_id=event_id, summary=choices_summary(changed, shop.shop_id))
    return web.json_response(saved.model_dump(), status=202)


@for_shop
async def get_preferences(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    user_id = request.match_info["user_id"]
    rows = await read_send_log(request, choices_statement(user_id, shop.shop_id), "preferences")
    if isinstance(rows, web.Response):
        return rows
    return web.json_response(buyer_choices(user_id, rows).model_dump(mode="json"))


PATH = f"/v1/shops/{SHOP_ID}/buyers/{USER_ID}/preferences"
ROUTES = [web.put(PATH, put_preferences), web.get(PATH, get_preferences)]
