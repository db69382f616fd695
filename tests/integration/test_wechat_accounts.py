"""WeChat accounts and templates as the manual describes them, on the real broker and sandbox:
templates added to either account from the API and the CLI alike, the limit of 25 counted on the
account, library templates, the accounts' setup, the platform's record, the settings history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from streams.devtools.demo import source_of
from streams.devtools.local_stack import Service
from tests.factories import ROOT, SAMPLE_EVENTS, event, to_bytes
from tests.integration.admin import SHOP, SHOP_TOKEN, call, shop_settings, wait_for_settings
from tests.integration.conftest import PLATFORM_TOKEN, Pipeline

pytestmark = pytest.mark.integration
OTHER_SHOP, OTHER_OA = 3005, "wx25c0ffee0a1b2c3d4e"
MISCONFIGURED_SHOP = 3006


def put_as_platform(api: Service, shop: dict[str, Any]) -> dict[str, Any]:
    status, saved = call(api, "PUT", f"/v1/shops/{shop['shop_id']}/settings", PLATFORM_TOKEN, shop)
    assert status == 200, saved
    return dict(saved)


def templates(api: Service, shop_id: int, token: str = PLATFORM_TOKEN) -> list[dict[str, Any]]:
    status, listing = call(api, "GET", f"/v1/shops/{shop_id}/templates", token)
    assert status == 200, listing
    return list(listing)


def bare_shop(shop_id: int, **accounts: Any) -> dict[str, Any]:
    return {"shop_id": shop_id, "name": f"店铺{shop_id}", **accounts, "scenes": {}}


def test_enabling_a_mini_program_scene_adds_its_template_to_the_mini_program(api: Service) -> None:
    shop = shop_settings()
    shop["scenes"]["buyer_recharge_succeeded"]["wechat_mp"] = {"enabled": False}
    put_as_platform(api, shop)
    path = f"/v1/shops/{SHOP}/scenes/buyer_recharge_succeeded/wechat_mp/enable"
    status, enabled = call(api, "POST", path, SHOP_TOKEN)
    assert status == 200, enabled
    template_id = enabled["scenes"]["buyer_recharge_succeeded"]["wechat_mp"]["template_id"]
    [added] = [t for t in templates(api, SHOP, SHOP_TOKEN) if t["template_id"] == template_id]
    assert (added["channel"], added["title"]) == ("wechat_mp", "充值成功通知")
    assert added["used_by"] == ["buyer_recharge_succeeded/wechat_mp"]
    assert added["content"].split("\n")[0].startswith("amount1:")  # the keyword ids WeChat was given


def test_the_command_line_adds_the_default_template_through_the_same_path(
    api: Service, pipeline: Pipeline
) -> None:
    shop = shop_settings()
    shop["scenes"]["buyer_withdrawal_succeeded"]["wechat_oa"] = {"enabled": False}
    put_as_platform(api, shop)
    env = {**os.environ, **pipeline.worker_env}
    args = ["settings", "set", str(SHOP), "buyer_withdrawal_succeeded", "wechat_oa", "--enable"]
    result = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "added template" in result.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "streams", "settings", "show", str(SHOP), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    template_id = json.loads(shown.stdout)["scenes"]["buyer_withdrawal_succeeded"]["wechat_oa"]["template_id"]
    assert template_id in result.stdout
    [added] = [t for t in templates(api, SHOP) if t["template_id"] == template_id]
    assert added["title"] == "提现成功通知"


def test_a_custom_template_on_a_library_template_renders_and_is_sent(
    api: Service, pipeline: Pipeline
) -> None:
    shop = shop_settings()
    shop["scenes"]["buyer_order_paid"]["wechat_oa"] = {"enabled": False}
    put_as_platform(api, shop)
    body = {
        "template": "custom",
        "library_id": "OPENTM207791277",  # 成功付款通知, as the manual suggests
        "fields": {"character_string1": "{order_no}", "amount2": "{pay_amount}", "time3": "{pay_time}"},
    }
    path = f"/v1/shops/{SHOP}/scenes/buyer_order_paid/wechat_oa/enable"
    status, enabled = call(api, "POST", path, SHOP_TOKEN, body)
    assert status == 200, enabled
    wait_for_settings(pipeline, enabled)
    data = SAMPLE_EVENTS["payment.succeeded"]["data"] | {"order_no": "E-LIB-0001"}
    _, outcomes = pipeline.run([to_bytes(event("payment.succeeded", data, shop=SHOP))])
    [oa] = [
        o
        for found in outcomes.values()
        for o in found
        if o.scene == "buyer_order_paid" and o.channel and o.channel.value == "wechat_oa"
    ]
    assert oa.status.value == "delivered", oa
    [message] = [
        m for m in pipeline.sandbox_messages("wechat_oa") if m["body"]["client_msg_id"] == oa.delivery_id
    ]
    assert message["body"]["data"] == {
        "character_string1": {"value": "E-LIB-0001"},
        "amount2": {"value": "159.00元"},
        "time3": {"value": "2026-11-25 12:06"},
    }


def _fill_account(pipeline: Pipeline, appid: str, secret: str, count: int) -> None:
    """Another administrator adds library templates straight on WeChat (the sandbox)."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            pipeline.sandbox.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return dict(json.load(reply))

    token = post(
        "/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": appid, "secret": secret}
    )
    for _ in range(count):
        added = post(
            f"/cgi-bin/template/api_add_template?access_token={token['access_token']}",
            {"template_id_short": "OPENTM418033445"},
        )
        assert added["errcode"] == 0, added


def test_the_26th_template_is_refused_with_409_and_nothing_is_left_behind(
    api: Service, pipeline: Pipeline
) -> None:
    put_as_platform(api, bare_shop(OTHER_SHOP, wechat_oa={"appid": OTHER_OA}))
    _fill_account(pipeline, OTHER_OA, "sandbox-oa-secret-3005", 25)
    path = f"/v1/shops/{OTHER_SHOP}/scenes/buyer_coupon_issued/wechat_oa/enable"
    status, answer = call(api, "POST", path, PLATFORM_TOKEN)
    assert status == 409, answer
    assert (
        "holds 25 templates, WeChat's limit: delete templates the shop no longer uses"
        in answer["problems"][0]
    )
    held = templates(api, OTHER_SHOP)
    assert len(held) == 25  # nothing was added
    assert (
        call(api, "DELETE", f"/v1/shops/{OTHER_SHOP}/templates/{held[0]['template_id']}", PLATFORM_TOKEN)[0]
        == 200
    )
    status, enabled = call(api, "POST", path, PLATFORM_TOKEN)
    assert status == 200, enabled
    assert len(templates(api, OTHER_SHOP)) == 25


def test_accounts_set_up_against_the_manual_are_refused_with_its_advice(api: Service) -> None:
    put_as_platform(
        api,
        bare_shop(
            MISCONFIGURED_SHOP,
            wechat_oa={"appid": "wx7e1d2c3b4a5f6e7d99"},
            wechat_mp={"appid": "wx8a7b6c5d4e3f2a1b99"},
        ),
    )
    base = f"/v1/shops/{MISCONFIGURED_SHOP}/scenes/buyer_order_paid"
    status, answer = call(api, "POST", f"{base}/wechat_oa/enable", PLATFORM_TOKEN)
    assert status == 409
    assert answer["problems"][0].startswith(
        "the Official Account's industries are 餐饮/餐饮 and 其他/其他: set the "
    )
    assert "IT科技/互联网|电子商务" in answer["problems"][0]
    status, answer = call(api, "POST", f"{base}/wechat_mp/enable", PLATFORM_TOKEN)
    assert status == 409
    assert "商家自营 - 服装/鞋/箱包" in answer["problems"][0]
    assert templates(api, MISCONFIGURED_SHOP) == []


def test_a_shop_cannot_use_another_shops_account_nor_reach_its_templates(api: Service) -> None:
    _, current = call(api, "GET", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN)
    status, answer = call(
        api, "PUT", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN, current | {"wechat_oa": {"appid": OTHER_OA}}
    )
    assert (status, answer["problems"]) == (403, ["wechat_oa: the shop's appid is set by the platform"])
    assert call(api, "GET", f"/v1/shops/{OTHER_SHOP}/templates", SHOP_TOKEN)[0] == 403
    assert call(api, "DELETE", f"/v1/shops/{OTHER_SHOP}/templates/anything", SHOP_TOKEN)[0] == 403


def test_the_settings_history_says_who_changed_what_and_when(api: Service) -> None:
    status, history = call(api, "GET", f"/v1/shops/{SHOP}/settings/history", SHOP_TOKEN)
    assert status == 200
    who_did = [(change["who"], change["action"]) for change in history]
    assert ("platform", "put settings") in who_did
    assert (str(SHOP), "enable buyer_recharge_succeeded/wechat_mp") in who_did
    assert any(who.startswith("platform:") and action.startswith("settings set") for who, action in who_did)
    [enabling] = [c for c in history if c["action"] == "enable buyer_recharge_succeeded/wechat_mp"]
    assert any(
        line.startswith("scenes.buyer_recharge_succeeded.wechat_mp.template_id: None -> ")
        for line in enabling["changes"]
    )
    assert [c["at"] for c in history] == sorted(c["at"] for c in history)
    assert call(api, "GET", f"/v1/shops/{OTHER_SHOP}/settings/history", SHOP_TOKEN)[0] == 403


def test_only_a_manual_refund_notifies_the_buyer(pipeline: Pipeline) -> None:
    """订单手动退款通知: a refund the shop made by hand notifies; any other is skipped, saying why."""
    refunds = [
        to_bytes(event("order.refunded", SAMPLE_EVENTS["order.refunded"]["data"] | {"manual": manual}))
        for manual in (True, False)
    ]
    pipeline.mp_accepts(["mp-buyer-order-refunded-v1"])  # the buyer asked to be told on the Mini Program
    published, outcomes = pipeline.run(refunds)
    by_hand, automatic = (outcomes[source_of(p)] for p in published)
    assert {(o.status.value, o.channel.value if o.channel else None) for o in by_hand} == {
        ("delivered", "wechat_oa"),
        ("delivered", "wechat_mp"),
    }
    [skipped] = automatic
    assert (skipped.status.value, skipped.reason) == (
        "skipped",
        "buyer_order_refunded: only when data.manual is true",
    )
