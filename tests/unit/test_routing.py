"""Routing and rendering: which messages a paid order becomes, and why others are not sent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.base import ChannelName, SourceRecord
from streams.catalog import Catalog, ShopRules, load_catalog, load_shop_rules
from streams.events import parse_event
from streams.routing import delivery_id, route
from tests.factories import (
    BUYER_OPENID,
    DEMO_APPID,
    DEMO_TEMPLATE_ID,
    ROOT,
    payment_event,
    to_bytes,
    with_changes,
)

SOURCE = SourceRecord(topic="mall.payments", partition=2, offset=41)
NOW = datetime(2026, 11, 25, 12, 3, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "config" / "catalog.yaml")


@pytest.fixture(scope="module")
def shops(catalog: Catalog) -> dict[int, ShopRules]:
    return load_shop_rules(ROOT / "config" / "shops", catalog)


def _route(document: dict[str, object], catalog: Catalog, shops: dict[int, ShopRules]):  # type: ignore[no-untyped-def]
    event = parse_event(to_bytes(document))
    return route(event, SOURCE, shops.get(event.shop_id), catalog, NOW)


def test_a_paid_order_becomes_one_oa_message_to_the_buyer(
    catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    document = payment_event(order_no="E202611250001", pay_amount_fen=12905, paid_at="2026-11-25T16:30:00Z")
    routing = _route(document, catalog, shops)
    assert routing.skips == []
    [delivery] = routing.deliveries
    assert delivery.channel is ChannelName.WECHAT_OA
    assert delivery.account == DEMO_APPID
    assert delivery.recipient == BUYER_OPENID
    assert delivery.template_id == DEMO_TEMPLATE_ID
    assert delivery.fields == {
        "character_string1": "E202611250001",
        "amount2": "129.05元",
        "thing3": "纯棉短袖T恤 白色 L码",
        "time4": "2026-11-26 00:30",  # Asia/Shanghai
    }
    assert delivery.source == SOURCE
    assert delivery.fanout == 1


def test_the_delivery_id_is_stable_for_a_redelivered_event(
    catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    document = payment_event()
    first = _route(document, catalog, shops).deliveries[0]
    again = _route(document, catalog, shops).deliveries[0]
    assert first.delivery_id == again.delivery_id
    assert first.delivery_id == delivery_id(
        document["id"], "buyer_order_paid", ChannelName.WECHAT_OA, BUYER_OPENID
    )  # type: ignore[arg-type]


def test_a_long_goods_name_is_shortened_not_rejected(catalog: Catalog, shops: dict[int, ShopRules]) -> None:
    routing = _route(payment_event(goods_name="2026秋冬新款加厚保暖羽绒服男士中长款连帽外套"), catalog, shops)
    assert routing.deliveries[0].fields["thing3"] == "2026秋冬新款加厚保暖羽绒服男士中长…"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            payment_event(buyer={"user_id": "u-1", "phone": "13812345678"}),
            "buyer_order_paid/wechat_oa: the buyer has no wechat_oa address",
        ),
        (with_changes(payment_event(), shopid=2002), "shop 2002 has no notification settings"),
    ],
)
def test_what_is_not_sent_says_why(
    document: dict[str, object], reason: str, catalog: Catalog, shops: dict[int, ShopRules]
) -> None:
    routing = _route(document, catalog, shops)
    assert routing.deliveries == []
    assert [str(skip) for skip in routing.skips] == [reason]


def test_an_event_without_a_scene_is_skipped(catalog: Catalog, shops: dict[int, ShopRules]) -> None:
    document = {
        "specversion": "1.0",
        "id": "evt-o-1",
        "type": "order.submitted",
        "source": "/mall/order",
        "time": "2026-11-25T12:00:00Z",
        "shopid": 1001,
        "data": {
            "order_no": "E1",
            "buyer": {"user_id": "u1", "oa_openid": BUYER_OPENID},
            "goods_name": "x",
            "total_amount_fen": 100,
            "submitted_at": "2026-11-25T12:00:00Z",
        },
    }
    routing = _route(document, catalog, shops)
    assert [str(skip) for skip in routing.skips] == ["no scene is triggered by order.submitted"]


def test_a_scene_the_shop_disabled_is_skipped(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(
        "shop_id: 1001\nname: t\nwechat_oa: {appid: wx5f2a9c1d8e7b6a01}\n"
        f"scenes:\n  buyer_order_paid:\n    wechat_oa: {{enabled: false, template_id: {DEMO_TEMPLATE_ID}}}\n"
    )
    shops = load_shop_rules(tmp_path, catalog)
    routing = _route(payment_event(), catalog, shops)
    assert [str(skip) for skip in routing.skips] == ["buyer_order_paid/wechat_oa: disabled by the shop"]
