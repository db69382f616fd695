"""Configuration files are refused with a message naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.core.catalog import Catalog, load_catalog
from streams.core.errors import ConfigError
from streams.core.shop_checks import load_shop_rules
from tests.factories import ROOT

GOOD_SCENE = """
scenes:
  buyer_order_paid:
    title: t
    audience: buyer
    kind: basic
    category: transactional
    trigger: payment.succeeded
    recipient: data.buyer
    channels: [wechat_oa]
    variables:
      order_no: {label: 订单编号, source: data.order_no}
    default_templates:
      wechat_oa:
        library_id: OPENTM1
        title: t
        fields: {character_string1: "{order_no}"}
wechat_oa_library:
  OPENTM1: {title: t, keywords: {character_string1: 订单编号}}
"""


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(ROOT / "config" / "catalog.yaml")


def test_the_shipped_catalog_and_shops_load(catalog: Catalog) -> None:
    shops = load_shop_rules(ROOT / "config" / "shops", catalog)
    assert "buyer_order_paid" in catalog.scenes
    assert 9001 in shops


def test_every_scene_has_its_category_codes_security_coupons_marketing(catalog: Catalog) -> None:
    categories = {scene_id: scene.category for scene_id, scene in catalog.scenes.items()}
    assert {s for s, c in categories.items() if c == "security"} == {
        "code_register",
        "code_reset_password",
        "code_login",
    }
    assert {s for s, c in categories.items() if c == "marketing"} == {"buyer_coupon_issued"}
    assert categories["buyer_order_paid"] == categories["seller_sms_balance_low"] == "transactional"


def test_a_good_catalog_loads_with_its_oa_keywords_named(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD_SCENE)
    assert load_catalog(path).keyword_names("OPENTM1", ["character_string1"]) == ["订单编号"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("{order_no}", "{order_number}"), "default_templates.wechat_oa: unknown variables ['order_number']"),
        (("character_string1", "keyword1"), "keywords without a WeChat type ['keyword1']"),
        (("audience: buyer", "audience: courier"), "scenes.buyer_order_paid.audience"),
        (("channels: [wechat_oa]", "channels: [wechat_mp]"), "wechat_oa: channel not allowed for this scene"),
        (
            ("kind: basic\n    category: transactional", "kind: verification_code\n    category: security"),
            "channels: verification_code notices go by aliyun_sms only",
        ),
        (("recipient: data.buyer", "recipient: buyer"), "recipient: String should match pattern"),
        (("OPENTM1: {title", "OPENTM2: {title"), "OPENTM1: not in wechat_oa_library"),
        (("category: transactional", "category: marketing"), "category: a basic notice is transactional"),
        (("category: transactional", "category: urgent"), "buyer_order_paid.category"),
        (("character_string1: 订单编号", "thing2: 订单编号"), "keywords ['character_string1'] are not in"),
        (("OPENTM1: {title", "keyword-7: {title"), "wechat_oa_library.keyword-7"),
    ],
)
def test_a_bad_catalog_names_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD_SCENE.replace(*change))
    with pytest.raises(ConfigError) as refused:
        load_catalog(path)
    assert str(path) in str(refused.value)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("shop", "message"),
    [
        (
            "scenes: {buyer_order_paid: {aliyun_sms: {enabled: true, template_id: T}}}",
            "scenes.buyer_order_paid.aliyun_sms: channel not allowed for this scene",
        ),
        (
            "scenes: {seller_order_refunded: {wechat_oa: {enabled: true, template_id: T}}}",
            "scenes.seller_order_refunded: no such scene in the catalog",
        ),
        ("wechat_oa: {appid: not-an-appid}", "wechat_oa.appid: String should match pattern"),
        (
            "scenes: {buyer_order_paid: {wechat_oa: {enabled: true, template_id: T}}}",
            "scenes.buyer_order_paid.wechat_oa: the shop has no wechat_oa account",
        ),
    ],
)
def test_a_bad_shop_file_names_the_field(tmp_path: Path, catalog: Catalog, shop: str, message: str) -> None:
    (tmp_path / "shop.yaml").write_text(f"shop_id: 7\nname: t\n{shop}\n")
    with pytest.raises(ConfigError) as refused:
        load_shop_rules(tmp_path, catalog)
    assert message in str(refused.value)
