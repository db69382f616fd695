"""Mini Program subscriptions on the real broker: the mall's Mini Program learns which templates to
ask for, the buyer's answers come through the admin API (or the event), each acceptance allows one
message, and a delivery with none left is skipped without calling WeChat."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.core.outcomes import Outcome, Status
from streams.devtools.local_stack import Service
from streams.ops.reading import end_offsets
from tests.factories import event, to_bytes
from tests.integration.admin import OTHER_TOKEN, SHOP, SHOP_TOKEN, call
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration
MP_APPID = "wx9c3e7a1b5d2f4e6a08"
SHIPPED = "mp-buyer-order-shipped-v1"
PAID = "mP-OrderPaid-4d2c9a7e1b3f5a6c8e0d2b4f6a8c"
BUYERS = 100


def new_buyer() -> str:
    return f"oMpT{uuid.uuid4().hex[:24]}"


def wechat_knows(pipeline: Pipeline, openid: str, count: int) -> None:
    """The buyer's acceptances as WeChat itself records them (the sandbox plays WeChat)."""
    grant = {"appid": MP_APPID, "openid": openid, "template_id": SHIPPED, "count": count}
    pipeline.tell_sandbox("wechat/subscriptions", grant)


def shipped(openid: str, shop: int = SHOP) -> bytes:
    data = {
        "order_no": f"E{uuid.uuid4().hex[:10]}",
        "buyer": {"user_id": "u-mp", "mp_openid": openid},
        "goods_name": "帆布双肩包",
        "express_company": "顺丰速运",
        "tracking_no": "SF123",
        "shipped_at": "2026-11-25T04:06:01Z",
    }
    return to_bytes(event("shipment.dispatched", data, shop=shop))


def mp_outcomes(pipeline: Pipeline, values: list[bytes]) -> list[Outcome]:
    _, finals = pipeline.run(values)
    return [o for found in finals.values() for o in found if o.channel == "wechat_mp"]


def sends_to(pipeline: Pipeline, openid: str) -> list[dict[str, Any]]:
    calls = pipeline.sandbox_requests("/cgi-bin/message/subscribe/send")
    return [c for c in calls if c.get("body", {}).get("touser") == openid]


def answer(api: Service, openid: str, token: str = SHOP_TOKEN) -> tuple[int, Any]:
    body = {
        "openid": openid,
        "results": {SHIPPED: "accept", PAID: "reject"},
        "answered_at": datetime.now(UTC).isoformat(),
    }
    return call(api, "POST", f"/v1/shops/{SHOP}/mp/subscriptions", token, body)


def test_the_mini_program_asks_for_the_shops_templates_and_each_acceptance_allows_one_message(
    pipeline: Pipeline, api: Service
) -> None:
    scenes = "buyer_order_shipped,buyer_order_paid,seller_new_order"
    path = f"/v1/shops/{SHOP}/mp/subscribe-templates?scenes={scenes}"
    status, offered = call(api, "GET", path, SHOP_TOKEN)
    assert status == 200
    assert offered == {
        "templates": {"buyer_order_shipped": SHIPPED, "buyer_order_paid": PAID},
        "not_offered": ["seller_new_order"],
    }
    assert call(api, "GET", path, OTHER_TOKEN)[0] == 403
    assert call(api, "GET", f"/v1/shops/{SHOP}/mp/subscribe-templates?scenes=nope", SHOP_TOKEN)[0] == 422

    openid = new_buyer()
    wechat_knows(pipeline, openid, 2)
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    published = [answer(api, openid) for _ in range(2)]
    assert [status for status, _ in published] == [202, 202]
    assert answer(api, openid, OTHER_TOKEN)[0] == 403, "a shop records answers for its own buyers only"
    ids = {body["event_id"] for _, body in published}
    for recorded in ids:  # once the router has read them, the buyer's deliveries come after them
        pipeline.outcomes_from(start, lambda o, recorded=recorded: o.event_id == recorded)
    not_asked = pipeline.metric_total("mall_notify_mp_not_asked_total")

    outcomes = mp_outcomes(pipeline, [shipped(openid) for _ in range(3)])

    assert sorted((o.status, o.reason) for o in outcomes) == [
        (Status.DELIVERED, None),
        (Status.DELIVERED, None),
        (Status.SKIPPED, "no_subscription"),
    ]
    assert len(sends_to(pipeline, openid)) == 2, "WeChat was not asked for the third"
    assert pipeline.metric_total("mall_notify_mp_not_asked_total") == not_asked + 1


def test_a_buyer_without_acceptance_is_skipped_and_wechat_never_called(pipeline: Pipeline) -> None:
    buyers = [new_buyer() for _ in range(BUYERS)]
    dead_before = end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter)

    outcomes = mp_outcomes(pipeline, [shipped(openid) for openid in buyers])

    assert [(o.status, o.reason) for o in outcomes] == [(Status.SKIPPED, "no_subscription")] * BUYERS
    assert not any(sends_to(pipeline, openid) for openid in buyers)
    assert end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter) == dead_before


def test_acceptances_outlive_a_crash_of_the_worker(pipeline: Pipeline) -> None:
    openid = new_buyer()
    wechat_knows(pipeline, openid, 5)
    pipeline.mp_accepts([SHIPPED], times=2, openid=openid, shop=SHOP)
    [first] = mp_outcomes(pipeline, [shipped(openid)])
    assert first.status is Status.DELIVERED

    pipeline.restart_worker(signal.SIGKILL)  # its state is read back from the changelog

    outcomes = mp_outcomes(pipeline, [shipped(openid), shipped(openid)])
    assert sorted(o.status for o in outcomes) == [Status.DELIVERED, Status.SKIPPED], "one left, spent once"
    assert len(sends_to(pipeline, openid)) == 2
