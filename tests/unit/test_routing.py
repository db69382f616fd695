"""Routing and rendering of every scene of the catalog: which messages an event becomes, with
which values, and why the others are not sent."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.base import ChannelName
from channels.wechat_values import problem
from streams.core.catalog import Catalog, load_catalog
from streams.core.errors import EventRejected
from streams.core.events import parse_event
from streams.core.render_plan import compile_shop
from streams.core.routing import DELIVERY_NAMESPACE, Router, Routing, delivery_id
from streams.core.shop_checks import load_shop_rules
from streams.core.shops import ShopRules
from streams.core.source import SourceRecord
from tests.factories import (
    BUYER_OPENID,
    DEMO_APPID,
    MP_OPENID,
    ROOT,
    SAMPLE_EVENTS,
    SELLER_OPENID,
    payment_event,
    to_bytes,
    with_changes,
)

SOURCE = SourceRecord(topic="mall.payments", partition=2, offset=41)
NOW = datetime(2026, 11, 25, 12, 3, 12, tzinfo=UTC)
OA, MP, SMS = ChannelName.WECHAT_OA, ChannelName.WECHAT_MP, ChannelName.ALIYUN_SMS
PHONE = "13812345678"  # the sample buyer's
SHIPPED_SMS = {"order_no": "E1", "express_company": "顺丰速运", "tracking_no": "SF123"}
ORDER = {
    "character_string1": "E1",
    "thing2": "帆布双肩包",
    "amount3": "159.00元",
    "time4": "2026-11-25 12:06",
}
PAID = {"character_string1": "E1", "amount2": "159.00元", "thing3": "帆布双肩包", "time4": "2026-11-25 12:06"}
SHIPPED = {
    "character_string1": "E1",
    "thing2": "帆布双肩包",
    "thing3": "顺丰速运",
    "character_string4": "SF123",
    "time5": "2026-11-25 12:06",
}
REFUND = {
    "character_string1": "E1",
    "amount2": "50.00元",
    "thing3": "帆布双肩包",
    "time4": "2026-11-25 12:06",
}
WITHDRAWN = {"amount1": "100.00元", "thing2": "微信零钱", "time3": "2026-11-25 12:06"}
RECHARGED = {"amount1": "100.00元", "amount2": "250.50元", "time3": "2026-11-25 12:06"}
COUPON = {"thing1": "双十二店铺券", "thing2": "满100减20", "time3": "2026-12-12 23:59"}
REFUND_ASKED = {
    "character_string1": "E1",
    "amount2": "50.00元",
    "thing3": "尺码不合适",
    "time4": "2026-11-25 12:06",
}
ORDER_PAGE = "pages/order/detail?order_no=E1"

# event type -> every delivery it becomes for the demo shop: (scene, channel, recipient, fields, link)
EXPECTED = {
    "order.submitted": [
        ("buyer_order_submitted", OA, BUYER_OPENID, ORDER, None),
        ("buyer_order_submitted", MP, MP_OPENID, ORDER, ORDER_PAGE),
        ("seller_new_order", OA, SELLER_OPENID, ORDER, None),
    ],
    "payment.succeeded": [
        ("buyer_order_paid", OA, BUYER_OPENID, PAID, None),
        ("buyer_order_paid", MP, MP_OPENID, PAID, ORDER_PAGE),
        (
            "seller_order_paid",
            OA,
            SELLER_OPENID,
            {
                "character_string1": "E1",
                "thing2": "帆布双肩包",
                "amount3": "159.00元",
                "time4": "2026-11-25 12:06",
            },
            None,
        ),
    ],
    "shipment.dispatched": [
        ("buyer_order_shipped", OA, BUYER_OPENID, SHIPPED, None),
        ("buyer_order_shipped", MP, MP_OPENID, SHIPPED, ORDER_PAGE),
        ("buyer_order_shipped", SMS, PHONE, SHIPPED_SMS, None),
    ],
    "order.refunded": [
        ("buyer_order_refunded", OA, BUYER_OPENID, REFUND, None),
        ("buyer_order_refunded", MP, MP_OPENID, REFUND, ORDER_PAGE),
    ],
    "order.refund_requested": [("seller_refund_requested", OA, SELLER_OPENID, REFUND_ASKED, None)],
    "wallet.withdrawal_succeeded": [
        ("buyer_withdrawal_succeeded", OA, BUYER_OPENID, WITHDRAWN, None),
        ("buyer_withdrawal_succeeded", MP, MP_OPENID, WITHDRAWN, "pages/wallet/index"),
    ],
    "wallet.recharge_succeeded": [
        ("buyer_recharge_succeeded", OA, BUYER_OPENID, RECHARGED, None),
        ("buyer_recharge_succeeded", MP, MP_OPENID, RECHARGED, "pages/wallet/index"),
    ],
    "coupon.issued": [("buyer_coupon_issued", OA, BUYER_OPENID, COUPON, None)],
    "auth.code_requested": [("code_register", SMS, PHONE, {"code": "482913"}, None)],
    "sms_balance.low": [
        (
            "seller_sms_balance_low",
            OA,
            SELLER_OPENID,
            {"thing1": "短信套餐余额", "number2": "37", "number3": "100", "time4": "2026-11-25 12:06"},
            None,
        )
    ],
    "webhook.disabled": [
        (
            "seller_webhook_disabled",
            OA,
            SELLER_OPENID,
            {"thing1": "hooks.example.com", "thing2": "failing for 24 hours", "time3": "2026-11-25 12:06"},
            None,
        )
    ],
    "sms_review.finished": [
        (
            "seller_sms_review_finished",
            OA,
            SELLER_OPENID,
            {"thing1": "短信签名百客优选", "phrase2": "通过", "thing3": "无", "time4": "2026-11-25 12:06"},
            None,
        )
    ],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "config" / "catalog.yaml")


@pytest.fixture(scope="module")
def shops(catalog: Catalog) -> dict[int, ShopRules]:
    return load_shop_rules(ROOT / "config" / "shops", catalog)


def _route(document: dict[str, object], catalog: Catalog, shops: dict[int, ShopRules]) -> Routing:
    event = parse_event(to_bytes(document))
    shop = shops.get(event.shop_id)
    return Router(catalog).route(event, compile_shop(shop, catalog) if shop else None, SOURCE, NOW)


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_every_scene_routes_and_renders(
    event_type: str, catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    routing = _route(SAMPLE_EVENTS[event_type], catalog, shops)
    got = [
        (d.scene, d.delivery.channel, d.delivery.recipient, d.delivery.fields, d.delivery.link)
        for d in routing.dispatches
    ]
    assert got == EXPECTED[event_type]
    assert routing.skips == []
    assert all(d.fanout == len(EXPECTED[event_type]) for d in routing.dispatches)
    for d in routing.dispatches:
        delivery = d.delivery
        rule, sms = shops[9001].rule(d.scene, delivery.channel), shops[9001].sms_template(d.scene)
        assert rule is not None
        assert delivery.template_id == (
            sms.template_code if sms and delivery.channel is SMS else rule.template_id
        )
        assert delivery.account == shops[9001].account(delivery.channel)
        if delivery.channel is not SMS:
            assert [problem(k, v) for k, v in delivery.fields.items()] == [None] * len(delivery.fields)


def test_every_scene_of_the_catalog_is_covered(catalog: Catalog) -> None:
    covered = {scene for deliveries in EXPECTED.values() for scene, *_ in deliveries}
    assert covered | {"code_reset_password", "code_login"} == set(catalog.scenes)


@pytest.mark.parametrize(
    ("purpose", "scene", "template"),
    [
        ("register", "code_register", "SMS_480000001"),
        ("reset_password", "code_reset_password", "SMS_480000004"),
        ("login", "code_login", "SMS_480000002"),
    ],
)
def test_a_code_goes_by_sms_for_its_purpose(
    purpose: str, scene: str, template: str, catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    document = copy.deepcopy(SAMPLE_EVENTS["auth.code_requested"])
    document["data"]["purpose"] = purpose
    [dispatch] = _route(document, catalog, shops).dispatches
    delivery = dispatch.delivery
    assert (dispatch.scene, delivery.channel, delivery.template_id, delivery.account) == (
        scene,
        SMS,
        template,
        "百客商城",
    )


def test_the_delivery_id_is_stable_for_a_redelivered_event(
    catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    document = payment_event()
    first = _route(document, catalog, shops).dispatches[0].delivery
    again = _route(document, catalog, shops).dispatches[0].delivery
    assert first.delivery_id == again.delivery_id
    assert first.delivery_id == delivery_id(document["id"], "buyer_order_paid", OA, BUYER_OPENID)
    name = f"{document['id']}|buyer_order_paid|wechat_oa|{BUYER_OPENID}"
    assert first.delivery_id == uuid.uuid5(DELIVERY_NAMESPACE, name).hex, "the ids of earlier releases"
    assert first.account == DEMO_APPID


def test_a_long_goods_name_is_shortened_not_rejected(catalog: Catalog, shops: dict[int, ShopRules]) -> None:
    routing = _route(payment_event(goods_name="2026秋冬新款加厚保暖羽绒服男士中长款连帽外套"), catalog, shops)
    assert routing.dispatches[0].delivery.fields["thing3"] == "2026秋冬新款加厚保暖羽绒服男士中长…"


def test_an_optional_value_falls_back_to_its_default(catalog: Catalog, shops: dict[int, ShopRules]) -> None:
    document = copy.deepcopy(SAMPLE_EVENTS["order.refund_requested"])
    del document["data"]["reason"]
    [dispatch] = _route(document, catalog, shops).dispatches
    assert dispatch.delivery.fields["thing3"] == "未填写"


@pytest.mark.parametrize(
    ("document", "reasons"),
    [
        (
            payment_event(buyer={"user_id": "u-1", "phone": "13812345678"}),
            [
                "buyer_order_paid/wechat_oa: the buyer has no wechat_oa address",
                "buyer_order_paid/wechat_mp: the buyer has no wechat_mp address",
                "seller_order_paid/wechat_oa: the seller has no wechat_oa address",
            ],
        ),
        (with_changes(payment_event(), shopid=2002), ["shop 2002 has no notification settings"]),
    ],
)
def test_what_is_not_sent_says_why(
    document: dict[str, object], reasons: list[str], catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    routing = _route(document, catalog, shops)
    assert routing.dispatches == []
    assert [str(skip) for skip in routing.skips] == reasons


def test_a_scene_the_shop_disabled_is_skipped(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(
        "shop_id: 9001\nname: t\nwechat_oa: {appid: wx5f2a9c1d8e7b6a01}\nscenes:\n  coupon_off: {}\n".replace(
            "  coupon_off: {}\n", "  buyer_coupon_issued:\n    wechat_oa: {enabled: false, template_id: T}\n"
        )
    )
    shops = load_shop_rules(tmp_path, catalog)
    routing = _route(SAMPLE_EVENTS["coupon.issued"], catalog, shops)
    assert [str(skip) for skip in routing.skips] == ["buyer_coupon_issued/wechat_oa: disabled by the shop"]


def test_a_shop_without_settings_for_a_scene_skips_it(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text("shop_id: 9001\nname: t\n")
    routing = _route(SAMPLE_EVENTS["order.refund_requested"], catalog, load_shop_rules(tmp_path, catalog))
    assert [str(skip) for skip in routing.skips] == [
        "seller_refund_requested/wechat_oa: disabled by the shop"
    ]


@given(
    goods=st.text(min_size=1, max_size=120).filter(str.strip),
    order_no=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60).filter(str.strip),
    fen=st.integers(min_value=0, max_value=99_999_999_99),
    express=st.text(min_size=1, max_size=60).filter(str.strip),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_the_event_holds_wechat_accepts_what_is_rendered(
    goods: str, order_no: str, fen: int, express: str, catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    for event_type in ("payment.succeeded", "shipment.dispatched", "order.refund_requested"):
        document = copy.deepcopy(SAMPLE_EVENTS[event_type])
        data = document["data"]
        data.update({"goods_name": goods, "order_no": order_no})
        data.update({k: fen for k in ("pay_amount_fen", "refund_amount_fen") if k in data})
        data.update({"express_company": express} if "express_company" in data else {})
        for dispatch in _route(document, catalog, shops).dispatches:
            fields = dispatch.delivery.fields
            assert [problem(k, v) for k, v in fields.items()] == [None] * len(fields)


def test_only_a_manual_refund_notifies_the_buyer(catalog: Catalog, shops: dict[int, ShopRules]) -> None:
    """订单手动退款通知: a refund the shop made by hand notifies; any other refund is skipped, saying why."""
    manual = SAMPLE_EVENTS["order.refunded"]
    automatic = copy.deepcopy(manual)
    automatic["data"]["manual"] = False
    sent = _route(manual, catalog, shops)
    assert {d.scene for d in sent.dispatches} == {"buyer_order_refunded"}
    skipped = _route(automatic, catalog, shops)
    assert skipped.dispatches == []
    assert [str(skip) for skip in skipped.skips] == ["buyer_order_refunded: only when data.manual is true"]


def test_a_refund_that_does_not_say_whether_it_was_manual_is_refused() -> None:
    unsaid = copy.deepcopy(SAMPLE_EVENTS["order.refunded"])
    del unsaid["data"]["manual"]
    with pytest.raises(EventRejected, match=r"data\.manual"):
        parse_event(to_bytes(unsaid))
