"""A shop's SMS balance falling below its threshold, on the real broker: the seller gets one OA
notice however many SMS follow, and the worker counts the shops by band."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from streams.core.outcomes import FINAL_STATUSES, Outcome, Status
from streams.core.shops import ShopRules
from streams.core.sms_quota import Package, new_purchase
from streams.ops.reading import end_offsets, read_until
from streams.ops.shop_store import load_config_shops, publish_purchases, publish_shops
from streams.settings import PROJECT_ROOT
from tests.factories import DEMO_SHOP, SELLER_OPENID, fresh_code, to_bytes
from tests.integration.admin import call
from tests.integration.conftest import PLATFORM_TOKEN, RECIPIENT_KEY, Pipeline

pytestmark = pytest.mark.integration
SHOP = 9011
SMALL = Package(id="small", name="小包", messages=103, price_fen=500)
NOTICE = "seller_sms_balance_low"


def wait_for_sealed_settings(pipeline: Pipeline, shop: ShopRules) -> None:
    """Until the worker routes with the shop's settings, the seller's openid sealed in them."""
    deadline = time.monotonic() + 20
    while True:
        status, seen = call(pipeline.worker, "GET", f"/shops/{shop.shop_id}/settings", PLATFORM_TOKEN)
        if status == 200 and seen["name"] == shop.name:
            assert seen["seller_openid"].startswith("sealed:"), "the settings topic holds no openid in clear"
            return
        assert time.monotonic() < deadline, "the worker never took the settings"
        time.sleep(0.1)


def test_the_seller_is_told_once_when_the_sms_balance_falls_below_the_threshold(pipeline: Pipeline) -> None:
    demo = next(shop for shop in load_config_shops(PROJECT_ROOT / "config") if shop.shop_id == DEMO_SHOP)
    shop = demo.model_copy(update={"shop_id": SHOP, "name": "低余额店"})
    publish_shops(pipeline.bootstrap, pipeline.topics.settings, [shop], RECIPIENT_KEY.encode())
    wait_for_sealed_settings(pipeline, shop)
    order = new_purchase(SHOP, SMALL, "platform", datetime.now(UTC), prepaid=True)
    publish_purchases(pipeline.bootstrap, pipeline.topics.sms_account, [order])
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)

    codes = [to_bytes(fresh_code() | {"shopid": SHOP}) for _ in range(8)]  # 103 -> 95 segments left
    _, finals = pipeline.run(codes)

    assert [o.status for found in finals.values() for o in found] == [Status.DELIVERED] * 8
    [told] = pipeline.outcomes_from(start, lambda o: o.scene == NOTICE and o.shop_id == SHOP)
    notice = Outcome.model_validate_json(told.value)
    assert (notice.status, notice.channel) == (Status.DELIVERED, "wechat_oa")
    sent = [m["body"] for m in pipeline.sandbox_messages("wechat_oa")]
    mine = [
        m
        for m in sent
        if m["template_id"] == "oa-seller-sms-balance-low-v1"
        and m["touser"] == SELLER_OPENID
        and m["data"]["number2"]["value"] == "99"
    ]
    assert len(mine) == 1, "told with the SMS that crossed the threshold (99 left)"
    time.sleep(2)  # anything told twice would be on its way by now
    everything = read_until(pipeline.bootstrap, pipeline.topics.outcomes, start, lambda _: False, 3)
    notices = [Outcome.model_validate_json(r.value) for r in everything]
    notice_finals = [
        o.status for o in notices if o.scene == NOTICE and o.shop_id == SHOP and o.status in FINAL_STATUSES
    ]
    assert notice_finals == [Status.DELIVERED], "one notice, no copy"
    assert 'mall_notify_sms_shops{band="low"}' in pipeline.metrics()
