"""Every rule a shop's settings can break is refused with a message naming the field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from channels.base import ChannelName
from streams.core.catalog import Catalog, load_catalog
from streams.core.errors import ConfigError
from streams.core.events import parse_event
from streams.core.render_plan import compile_shop
from streams.core.routing import Router
from streams.core.shop_checks import parse_shop_rules, shop_problems
from streams.core.source import SourceRecord
from tests.factories import ROOT, SAMPLE_EVENTS, to_bytes

SAMPLE_SOURCE = SourceRecord(topic="mall.payments", partition=0, offset=1)
NOW = datetime(2026, 11, 25, tzinfo=UTC)
DEMO = yaml.safe_load((ROOT / "config" / "shops" / "demo.yaml").read_text())
PAID_FIELDS = {
    "character_string1": "{order_no}",
    "amount2": "{pay_amount}",
    "thing3": "{goods_name}",
    "time4": "{pay_time}",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "config" / "catalog.yaml")


def demo(**changes: Any) -> dict[str, Any]:
    shop = copy.deepcopy(DEMO)
    shop.update(changes)
    return shop


def with_rule(scene: str, channel: str, **rule: Any) -> dict[str, Any]:
    shop = demo()
    shop["scenes"].setdefault(scene, {})[channel] = {"enabled": True, **rule}
    return shop


def problems_of(shop: dict[str, Any], catalog: Catalog) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_shop_rules(shop, catalog, "shop 1001")
    return str(refused.value).removeprefix("shop 1001: ").split("; ")


def test_the_demo_shop_is_valid(catalog: Catalog) -> None:
    assert shop_problems(parse_shop_rules(DEMO, catalog, "demo"), catalog) == []


@pytest.mark.parametrize(
    ("shop", "expected"),
    [
        (
            with_rule("buyer_coupon_issued", "wechat_mp", template_id="T"),
            "scenes.buyer_coupon_issued.wechat_mp: channel not allowed for this scene",
        ),
        (
            with_rule("code_login", "wechat_oa", template_id="T"),
            "scenes.code_login.wechat_oa: channel not allowed for this scene",
        ),
        (with_rule("no_such_scene", "wechat_oa"), "scenes.no_such_scene: no such scene in the catalog"),
        (
            with_rule("buyer_order_paid", "wechat_oa"),
            "scenes.buyer_order_paid.wechat_oa: template_id: missing",
        ),
        (
            demo(sms={"signatures": [{"name": "百客商城", "status": "submitted"}], "active": "百客商城"}),
            "sms.active: 百客商城 is not an approved signature of the shop",
        ),
        (
            demo(sms={"signatures": [{"name": f"店铺{n}", "status": "approved"} for n in range(11)]}),
            "sms.signatures: at most 10 signatures per shop, not 11",
        ),
        (
            demo(
                sms_templates=[
                    {"name": n, "scene": "code_login", "template_code": c, "content": "${code}"}
                    for n, c in (("a", "SMS_1"), ("b", "SMS_2"))
                ]
            ),
            "sms_templates: scene code_login has 2 enabled templates (a, b), disable all but one",
        ),
        (
            demo(sms_templates=[]),
            "scenes.code_register.aliyun_sms: no enabled SMS template for this scene (sms_templates)",
        ),
        (
            demo(
                sms_templates=[
                    {"name": "n", "scene": "code_login", "template_code": "SMS_1", "content": "${pin}"}
                ]
            ),
            "sms_templates.0.content: unknown variable pin",
        ),
        (
            demo(
                sms_templates=[
                    {"name": "n", "scene": "buyer_order_paid", "template_code": "SMS_1", "content": "x"}
                ]
            ),
            "sms_templates.0.scene: buyer_order_paid is not a scene sent by SMS",
        ),
    ],
)
def test_a_bad_setting_names_its_field(shop: dict[str, Any], expected: str, catalog: Catalog) -> None:
    assert expected in problems_of(shop, catalog)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({**PAID_FIELDS, "thing3": "您购买的{goods_nam}"}, "fields.thing3: unknown variable goods_nam"),
        ({k: v for k, v in PAID_FIELDS.items() if k != "time4"}, "fields.time4: template field missing"),
        ({**PAID_FIELDS, "thing9": "x"}, "fields.thing9: not a field of this template"),
        (
            {**PAID_FIELDS, "thing3": "感谢您在百客旗舰店购买了以下这件精美的商品：{goods_name}"},
            "fields.thing3: WeChat would reject it even with the shortest values",
        ),
        (
            {**PAID_FIELDS, "character_string1": "订单{order_no}"},
            "fields.character_string1: WeChat would reject it even with the shortest values",
        ),
    ],
)
def test_custom_template_contents_are_checked(
    fields: dict[str, str], expected: str, catalog: Catalog
) -> None:
    shop = with_rule("buyer_order_paid", "wechat_oa", template="custom", template_id="T", fields=fields)
    assert any(
        problem.startswith(f"scenes.buyer_order_paid.wechat_oa: {expected}")
        for problem in problems_of(shop, catalog)
    ), problems_of(shop, catalog)


def test_custom_contents_are_what_gets_sent(catalog: Catalog) -> None:
    fields = {**PAID_FIELDS, "thing3": "您购买的{goods_name}"}
    shop = parse_shop_rules(
        with_rule("buyer_order_paid", "wechat_oa", template="custom", template_id="T", fields=fields),
        catalog,
        "shop",
    )
    event = parse_event(to_bytes(SAMPLE_EVENTS["payment.succeeded"]))
    routing = Router(catalog).route(event, compile_shop(shop, catalog), SAMPLE_SOURCE, NOW)
    [oa] = [
        d.delivery
        for d in routing.dispatches
        if d.scene == "buyer_order_paid" and d.delivery.channel is ChannelName.WECHAT_OA
    ]
    assert oa.fields["thing3"] == "您购买的帆布双肩包"
    assert oa.template_id == "T"
