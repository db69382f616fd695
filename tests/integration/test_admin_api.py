"""The admin API as a shop and the platform use it: tokens, validation, and settings that the
running worker applies to the next event, without a restart."""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from streams.devtools.local_stack import Service, start_api
from tests.factories import ROOT, SAMPLE_EVENTS, event, to_bytes
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration
SHOP = 3003
TOKENS = {
    "MALL_NOTIFY_API_PLATFORM_TOKEN": "platform-secret",
    "MALL_NOTIFY_API_SHOP_TOKENS": json.dumps({str(SHOP): "shop-3003-secret", "1001": "shop-1001-secret"}),
}


@pytest.fixture(scope="module")
def api(pipeline: Pipeline) -> Iterator[Service]:
    service = start_api(pipeline.log_dir, {**pipeline.worker_env, **TOKENS})
    yield service
    service.stop()


def call(
    api: Service, method: str, path: str, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def shop_settings(**oa_rule: Any) -> dict[str, Any]:
    shop = copy.deepcopy(yaml.safe_load((ROOT / "config" / "shops" / "demo.yaml").read_text()))
    shop["shop_id"] = SHOP
    shop["scenes"]["buyer_order_paid"]["wechat_oa"].update(oa_rule)
    return shop


def test_the_openapi_document_describes_the_api(api: Service) -> None:
    status, document = call(api, "GET", "/openapi.json")
    assert status == 200
    assert set(document["paths"]) == {
        "/v1/catalog",
        "/v1/shops/{shop_id}/settings",
        "/v1/shops/{shop_id}/scenes/{scene}/{channel}/enable",
        "/v1/shops/{shop_id}/scenes/{scene}/{channel}/disable",
        "/v1/shops/{shop_id}/templates",
        "/v1/shops/{shop_id}/templates/{template_id}",
    }
    assert "ShopRules" in document["components"]["schemas"]


def test_tokens_reach_only_what_they_may(api: Service) -> None:
    assert call(api, "GET", "/v1/catalog")[0] == 401
    assert call(api, "GET", "/v1/catalog", "not-a-token")[0] == 401
    status, catalog = call(api, "GET", "/v1/catalog", "shop-1001-secret")
    assert status == 200
    assert "buyer_order_paid" in catalog["scenes"]
    assert call(api, "PUT", f"/v1/shops/{SHOP}/settings", "shop-1001-secret", shop_settings())[0] == 403
    assert call(api, "GET", "/v1/shops/1001/settings", "platform-secret")[0] == 200


def test_invalid_settings_are_refused_naming_the_field(api: Service) -> None:
    bad = shop_settings(
        template="custom",
        fields={
            "character_string1": "{order_no}",
            "amount2": "{pay_amount}",
            "thing3": "您购买的{goods}",
            "time4": "{pay_time}",
        },
    )
    status, answer = call(api, "PUT", f"/v1/shops/{SHOP}/settings", "shop-3003-secret", bad)
    assert status == 422
    assert answer["problems"] == ["scenes.buyer_order_paid.wechat_oa: fields.thing3: unknown variable goods"]


def _wait_for_settings(pipeline: Pipeline, expected: dict[str, Any]) -> None:
    """Until the running worker routes with ``expected`` (it follows the settings topic)."""
    deadline = time.monotonic() + 20
    while call(pipeline.worker, "GET", f"/shops/{SHOP}/settings")[1] != expected:
        assert time.monotonic() < deadline, "the worker never took the change"
        time.sleep(0.1)


def _paid_order(pipeline: Pipeline) -> dict[str, Any]:
    data = copy.deepcopy(SAMPLE_EVENTS["payment.succeeded"]["data"]) | {
        "order_no": f"E-API-{time.monotonic_ns()}"
    }
    _, outcomes = pipeline.run([to_bytes(event("payment.succeeded", data, shop=SHOP))])
    [found] = outcomes.values()
    return {f"{o.scene}/{o.channel.value if o.channel else ''}": o for o in found}


def test_saved_settings_apply_to_the_next_event_without_a_restart(api: Service, pipeline: Pipeline) -> None:
    custom = {
        "character_string1": "{order_no}",
        "amount2": "{pay_amount}",
        "thing3": "您购买的{goods_name}",
        "time4": "{pay_time}",
    }
    status, saved = call(
        api,
        "PUT",
        f"/v1/shops/{SHOP}/settings",
        "shop-3003-secret",
        shop_settings(template="custom", fields=custom),
    )
    assert status == 200
    _wait_for_settings(pipeline, saved)
    first = _paid_order(pipeline)
    assert set(first) == {
        "buyer_order_paid/wechat_oa",
        "buyer_order_paid/wechat_mp",
        "seller_order_paid/wechat_oa",
    }
    delivery_id = first["buyer_order_paid/wechat_oa"].delivery_id
    [message] = [
        m for m in pipeline.sandbox_messages("wechat_oa") if m["body"]["client_msg_id"] == delivery_id
    ]
    assert message["body"]["data"]["thing3"]["value"] == "您购买的帆布双肩包"

    status, saved = call(
        api, "PUT", f"/v1/shops/{SHOP}/settings", "platform-secret", shop_settings(enabled=False)
    )
    assert status == 200
    _wait_for_settings(pipeline, saved)
    assert set(_paid_order(pipeline)) == {"buyer_order_paid/wechat_mp", "seller_order_paid/wechat_oa"}


def _coupon(pipeline: Pipeline) -> Any:
    data = copy.deepcopy(SAMPLE_EVENTS["coupon.issued"]["data"])
    _, outcomes = pipeline.run([to_bytes(event("coupon.issued", data, shop=SHOP))])
    [[outcome]] = outcomes.values()
    return outcome


def test_enabling_a_default_template_adds_it_to_the_oa_and_deleting_it_turns_the_scene_off(
    api: Service, pipeline: Pipeline
) -> None:
    shop = shop_settings()
    shop["scenes"]["buyer_coupon_issued"]["wechat_oa"] = {"enabled": False}
    status, saved = call(api, "PUT", f"/v1/shops/{SHOP}/settings", "platform-secret", shop)
    assert status == 200
    _wait_for_settings(pipeline, saved)
    status, enabled = call(
        api, "POST", f"/v1/shops/{SHOP}/scenes/buyer_coupon_issued/wechat_oa/enable", "shop-3003-secret"
    )
    assert status == 200, enabled
    template_id = enabled["scenes"]["buyer_coupon_issued"]["wechat_oa"]["template_id"]
    assert template_id
    status, templates = call(api, "GET", f"/v1/shops/{SHOP}/templates", "shop-3003-secret")
    assert status == 200
    [added] = [t for t in templates if t["template_id"] == template_id]
    assert added["used_by"] == ["buyer_coupon_issued/wechat_oa"]
    _wait_for_settings(pipeline, enabled)
    sent = _coupon(pipeline)
    assert sent.status.value == "delivered"
    [message] = [
        m for m in pipeline.sandbox_messages("wechat_oa") if m["body"]["client_msg_id"] == sent.delivery_id
    ]
    assert message["body"]["template_id"] == template_id

    status, after = call(api, "DELETE", f"/v1/shops/{SHOP}/templates/{template_id}", "shop-3003-secret")
    assert status == 200, after
    rule = after["scenes"]["buyer_coupon_issued"]["wechat_oa"]
    assert (rule["enabled"], rule["disabled_reason"]) == (False, f"its template {template_id} was deleted")
    _wait_for_settings(pipeline, after)
    skipped = _coupon(pipeline)
    assert skipped.status.value == "skipped"
    assert (
        skipped.reason
        == f"buyer_coupon_issued/wechat_oa: disabled by the shop (its template {template_id} was deleted)"
    )
