"""Turning a WeChat scene on adds its template to the shop's account: checked first, counted on
the account's real list, added once, undone when the save fails."""

from __future__ import annotations

import pytest

from channels.base import ChannelName
from channels.wechat_templates import PrivateTemplate
from streams.core.catalog import Catalog
from streams.core.errors import ConfigError
from streams.core.shops import ShopRules
from streams.core.sms_signatures import Refused
from streams.ops.scene_switch import RuleChange, switch
from streams.ops.shop_store import load_config_shops
from streams.settings import PROJECT_ROOT

OA, MP = ChannelName.WECHAT_OA, ChannelName.WECHAT_MP


class FakeAccount:
    """One WeChat account's templates, as WeChat keeps them."""

    def __init__(self, held: int = 0, misconfigured: str | None = None) -> None:
        self.templates = {f"old-{n}": PrivateTemplate(template_id=f"old-{n}") for n in range(held)}
        self.added: list[tuple[str, list[str]]] = []
        self.wrong = misconfigured

    async def add(self, appid: str, library_id: str, keywords: list[str]) -> str:
        self.added.append((library_id, keywords))
        template_id = f"new-{len(self.added)}"
        self.templates[template_id] = PrivateTemplate(template_id=template_id)
        return template_id

    async def list(self, appid: str) -> list[PrivateTemplate]:
        return list(self.templates.values())

    async def delete(self, appid: str, template_id: str) -> None:
        del self.templates[template_id]

    async def misconfigured(self, appid: str) -> str | None:
        return self.wrong


@pytest.fixture
def shop() -> ShopRules:
    """The demo shop with its paid-order scenes off and without template ids."""
    demo = load_config_shops(PROJECT_ROOT / "config")[0]
    scenes = {**demo.scenes}
    scenes.pop("buyer_order_paid")
    return demo.model_copy(update={"scenes": scenes})


async def test_enabling_a_default_template_adds_it_to_either_account(
    shop: ShopRules, catalog: Catalog
) -> None:
    accounts = {OA: FakeAccount(), MP: FakeAccount()}
    on_oa = await switch(
        shop, catalog, "buyer_order_paid", OA, RuleChange(enabled=True), accounts.__getitem__
    )
    on_mp = await switch(
        on_oa.shop, catalog, "buyer_order_paid", MP, RuleChange(enabled=True), accounts.__getitem__
    )
    # the Official Account is given the keywords' names in the library, the Mini Program their ids
    assert accounts[OA].added == [("OPENTM417958215", ["订单编号", "支付金额", "商品名称", "支付时间"])]
    assert accounts[MP].added == [("1221", ["character_string1", "amount2", "thing3", "time4"])]
    rules = on_mp.shop.scenes["buyer_order_paid"]
    assert (rules[OA].template_id, rules[MP].template_id) == ("new-1", "new-1")
    again = await switch(
        on_mp.shop, catalog, "buyer_order_paid", OA, RuleChange(enabled=True), accounts.__getitem__
    )
    assert again.added is None  # it has its template: nothing added twice


async def test_the_26th_template_is_refused_before_anything_is_added(
    shop: ShopRules, catalog: Catalog
) -> None:
    full = FakeAccount(held=25)
    with pytest.raises(Refused, match="holds 25 templates, WeChat's limit: delete templates"):
        await switch(shop, catalog, "buyer_order_paid", OA, RuleChange(enabled=True), lambda _: full)
    assert full.added == []


async def test_an_account_set_up_against_the_manual_is_refused_with_its_advice(
    shop: ShopRules, catalog: Catalog
) -> None:
    wrong = FakeAccount(
        misconfigured="the Official Account's industries are 餐饮/餐饮 and 其他/其他: set ..."
    )
    with pytest.raises(Refused, match="餐饮/餐饮"):
        await switch(shop, catalog, "buyer_order_paid", OA, RuleChange(enabled=True), lambda _: wrong)
    assert wrong.added == []


async def test_invalid_settings_are_refused_before_wechat_is_asked(shop: ShopRules, catalog: Catalog) -> None:
    account = FakeAccount()
    change = RuleChange(enabled=True, template="custom", fields={"thing3": "{no_such_variable}"})
    with pytest.raises(ConfigError, match="unknown variable no_such_variable"):
        await switch(shop, catalog, "buyer_order_paid", OA, change, lambda _: account)
    assert account.added == []


async def test_a_custom_template_on_a_library_template_adds_that_one_and_undo_deletes_it(
    shop: ShopRules, catalog: Catalog
) -> None:
    account = FakeAccount()
    change = RuleChange(
        enabled=True,
        template="custom",
        library_id="OPENTM207791277",  # 成功付款通知, as the manual suggests
        fields={"character_string1": "{order_no}", "amount2": "{pay_amount}", "time3": "{pay_time}"},
    )
    switched = await switch(shop, catalog, "buyer_order_paid", OA, change, lambda _: account)
    assert account.added == [("OPENTM207791277", ["订单编号", "支付金额", "支付时间"])]
    assert switched.undo is not None
    await switched.undo()
    assert account.templates == {}


async def test_a_library_template_the_scene_does_not_offer_is_refused(
    shop: ShopRules, catalog: Catalog
) -> None:
    change = RuleChange(enabled=True, template="custom", library_id="OPENTM418033445", fields={})
    with pytest.raises(ConfigError, match="is not a library template of this scene"):
        await switch(shop, catalog, "buyer_order_paid", OA, change, lambda _: FakeAccount())
