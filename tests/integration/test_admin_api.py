"""The admin API as a shop and the platform use it: tokens, validation, and settings that the
running worker applies to the next event, without a restart."""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.devtools.local_stack import Service
from tests.factories import SAMPLE_EVENTS, event, to_bytes
from tests.integration.admin import (
    OTHER_TOKEN,
    ROTATED_TOKEN,
    SHOP,
    SHOP_TOKEN,
    call,
    shop_settings,
    wait_for_settings,
)
from tests.integration.conftest import PLATFORM_TOKEN, Pipeline

pytestmark = pytest.mark.integration


def test_the_openapi_document_describes_the_api(api: Service) -> None:
    status, document = call(api, "GET", "/openapi.json")
    assert status == 200
    assert set(document["paths"]) == {
        "/healthz",
        "/metrics",
        "/v1/catalog",
        "/v1/shops/{shop_id}/settings",
        "/v1/shops/{shop_id}/settings/history",
        "/v1/shops/{shop_id}/scenes/{scene}/{channel}/enable",
        "/v1/shops/{shop_id}/scenes/{scene}/{channel}/disable",
        "/v1/shops/{shop_id}/templates",
        "/v1/shops/{shop_id}/templates/{template_id}",
        "/v1/sms/packages",
        "/v1/sms/packages/{package_id}",
        "/v1/sms/packages/{package_id}/retire",
        "/v1/shops/{shop_id}/sms/purchases",
        "/v1/shops/{shop_id}/sms/purchases/{purchase_id}/payment",
        "/v1/shops/{shop_id}/sms/balance",
        "/v1/shops/{shop_id}/sms/spend",
        "/v1/shops/{shop_id}/sms/signatures",
        "/v1/shops/{shop_id}/sms/signatures/{name}/review",
        "/v1/shops/{shop_id}/sms/signatures/{name}/activate",
        "/v1/shops/{shop_id}/sms/templates",
        "/v1/shops/{shop_id}/sms/qualification/phone-code",
        "/v1/shops/{shop_id}/sms/qualification",
        "/v1/shops/{shop_id}/sms/letter",
        "/v1/shops/{shop_id}/wechat/{kind}",
        "/v1/shops/{shop_id}/wechat",
        "/v1/platform/aliyun",
        "/v1/history",
        "/v1/shops/{shop_id}/history",
        "/v1/shops/{shop_id}/mp/subscribe-templates",
        "/v1/shops/{shop_id}/mp/subscriptions",
        "/v1/messages",
        "/v1/shops/{shop_id}/messages",
        "/v1/shops/{shop_id}/webhooks",
        "/v1/shops/{shop_id}/webhooks/{endpoint_id}",
        "/v1/shops/{shop_id}/webhooks/{endpoint_id}/enable",
        "/v1/shops/{shop_id}/buyers/{user_id}/preferences",
    }
    assert "ShopRules" in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the platform's or a shop's token",
    }
    put = document["paths"]["/v1/shops/{shop_id}/settings"]["put"]
    assert {"400", "401", "403", "404", "413", "422", "503"} <= set(put["responses"])
    assert put["security"] == [{"bearer": []}]


def test_tokens_reach_only_what_they_may(api: Service) -> None:
    assert call(api, "GET", "/v1/catalog")[0] == 401
    assert call(api, "GET", "/v1/catalog", "not-a-token")[0] == 401
    status, catalog = call(api, "GET", "/v1/catalog", OTHER_TOKEN)
    assert status == 200
    assert "buyer_order_paid" in catalog["scenes"]
    assert call(api, "PUT", f"/v1/shops/{SHOP}/settings", OTHER_TOKEN, shop_settings())[0] == 403
    assert call(api, "GET", "/v1/shops/9001/settings", PLATFORM_TOKEN)[0] == 200
    assert call(api, "GET", f"/v1/shops/{SHOP}/settings", ROTATED_TOKEN)[0] in (200, 404)  # both tokens work


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
    status, answer = call(api, "PUT", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN, bad)
    assert status == 422
    assert answer["problems"] == ["scenes.buyer_order_paid.wechat_oa: fields.thing3: unknown variable goods"]


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
        SHOP_TOKEN,
        shop_settings(template="custom", fields=custom),
    )
    assert status == 200
    wait_for_settings(pipeline, saved)
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
        api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, shop_settings(enabled=False)
    )
    assert status == 200
    wait_for_settings(pipeline, saved)
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
    status, saved = call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, shop)
    assert status == 200
    wait_for_settings(pipeline, saved)
    status, enabled = call(
        api, "POST", f"/v1/shops/{SHOP}/scenes/buyer_coupon_issued/wechat_oa/enable", SHOP_TOKEN
    )
    assert status == 200, enabled
    template_id = enabled["scenes"]["buyer_coupon_issued"]["wechat_oa"]["template_id"]
    assert template_id
    status, templates = call(api, "GET", f"/v1/shops/{SHOP}/templates", SHOP_TOKEN)
    assert status == 200
    [added] = [t for t in templates if t["template_id"] == template_id]
    assert added["used_by"] == ["buyer_coupon_issued/wechat_oa"]
    wait_for_settings(pipeline, enabled)
    sent = _coupon(pipeline)
    assert sent.status.value == "delivered"
    [message] = [
        m for m in pipeline.sandbox_messages("wechat_oa") if m["body"]["client_msg_id"] == sent.delivery_id
    ]
    assert message["body"]["template_id"] == template_id

    status, after = call(api, "DELETE", f"/v1/shops/{SHOP}/templates/{template_id}", SHOP_TOKEN)
    assert status == 200, after
    rule = after["scenes"]["buyer_coupon_issued"]["wechat_oa"]
    assert (rule["enabled"], rule["disabled_reason"]) == (False, f"its template {template_id} was deleted")
    wait_for_settings(pipeline, after)
    skipped = _coupon(pipeline)
    assert skipped.status.value == "skipped"
    assert (
        skipped.reason
        == f"buyer_coupon_issued/wechat_oa: disabled by the shop (its template {template_id} was deleted)"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/shops/%D9%A1%D9%A0%D9%A0%D9%A1/settings",  # ١٠٠١, Arabic-Indic digits
        "/v1/shops/09001/settings",  # not the canonical spelling of 9001
        "/v1/shops/9001/scenes/buyer_order_paid/wechat_oa/toggle",
        "/nothing-here",
    ],
)
def test_paths_that_are_not_the_apis_are_json_404s(api: Service, path: str) -> None:
    status, answer = call(api, "POST" if "scenes" in path else "GET", path, OTHER_TOKEN)
    assert status == 404
    assert answer["problems"][0].startswith("no such resource")


def test_an_over_long_url_is_a_json_414(api: Service) -> None:
    status, answer = call(api, "GET", "/v1/history?phone=" + "1" * 20_000, PLATFORM_TOKEN)
    assert (status, answer) == (414, {"problems": ["the URL is longer than 8 KiB"]})


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400, "depth limit exceeded"),
        (b'{"shop_id": 3003, "name": "\\ud800"}', 400, "the body must be JSON in UTF-8"),
        (b'{"shop_id": 3003, "name": "' + b"x" * 300_000 + b'"}', 413, "body size 262144 exceeded"),
        (b"not json", 400, "the body must be JSON"),
    ],
    ids=["nested-100000-deep", "lone-surrogate", "huge-name", "not-json"],
)
def test_malformed_bodies_are_4xx_with_a_problem(
    api: Service, body: bytes, status: int, problem: str
) -> None:
    answer = call(api, "PUT", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN, body)
    assert answer[0] == status
    assert problem in answer[1]["problems"][0]


def test_a_method_not_allowed_says_which_are(api: Service) -> None:
    request = urllib.request.Request(
        f"{api.url}/v1/shops/{SHOP}/settings",
        method="PATCH",
        headers={"Authorization": f"Bearer {SHOP_TOKEN}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    assert "PUT" in refused.value.headers["Allow"]
    assert json.load(refused.value)["problems"][0] == f"PATCH is not allowed on /v1/shops/{SHOP}/settings"


@pytest.mark.parametrize(
    "query",
    [
        "phone=12345",
        "phone=138abcd5678",
        "shop=%C2%B2&phone=13812345678",
        "since=99999999d&phone=13812345678",
    ],
)
def test_history_questions_that_make_no_sense_are_4xx_in_json(api: Service, query: str) -> None:
    status, answer = call(api, "GET", f"/v1/history?{query}", PLATFORM_TOKEN)
    assert status == 422
    assert answer["problems"]


def test_long_strings_and_lone_braces_are_refused_naming_the_field(api: Service) -> None:
    shop = shop_settings(template="custom", fields={"character_string1": "abc{"})
    shop["name"] = "店" * 10_000
    shop["scenes"]["buyer_order_paid"]["wechat_mp"]["template_id"] = "t" * 5_000
    status, answer = call(api, "PUT", f"/v1/shops/{SHOP}/settings", SHOP_TOKEN, shop)
    assert status == 422
    problems = "\n".join(answer["problems"])
    assert "name: String should have at most 64 characters" in problems
    assert (
        "scenes.buyer_order_paid.wechat_mp.template_id: String should have at most 128 characters" in problems
    )


def test_the_workers_shop_pages_need_the_platforms_token(pipeline: Pipeline) -> None:
    assert call(pipeline.worker, "GET", "/shops/9001/settings")[0] == 401
    assert call(pipeline.worker, "GET", "/shops/9001/settings", OTHER_TOKEN)[0] == 401
    status, shop = call(pipeline.worker, "GET", "/shops/9001/settings", PLATFORM_TOKEN)
    assert (status, shop["shop_id"]) == (200, 9001)


def test_every_change_is_audited_and_every_request_logged(api: Service) -> None:
    shop = shop_settings()
    shop["shop_id"], shop["name"] = 3015, "审计店"
    assert call(api, "PUT", "/v1/shops/3015/settings", PLATFORM_TOKEN, shop)[0] == 200

    def logged() -> list[dict[str, Any]]:
        return [json.loads(line) for line in api.log_path.read_text().splitlines() if line.startswith("{")]

    def accessed(lines: list[dict[str, Any]]) -> bool:  # written just after the answer went out
        return any(
            line["name"] == "mall_notify.api.access" and "PUT /v1/shops/3015/settings" in line["message"]
            for line in lines
        )

    deadline = time.monotonic() + 10
    while not accessed(lines := logged()):
        assert time.monotonic() < deadline, "no access-log line for the request"
        time.sleep(0.1)
    [audit] = [line for line in lines if line["name"] == "mall_notify.audit" and line.get("shop_id") == 3015]
    assert (audit["who"], audit["action"]) == ("platform", "put settings")
    assert "name: None -> 审计店" in audit["changes"]
    assert PLATFORM_TOKEN not in api.log_path.read_text()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FUZZ_SHOP = 3004


def _mutated(document: Any, data: st.DataObject) -> Any:
    """The valid settings with one value, anywhere, replaced by any JSON."""
    if isinstance(document, dict) and document and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(document)))
        return document | {key: _mutated(document[key], data)}
    return data.draw(JSON)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzing_the_api_never_gets_a_500(api: Service, data: st.DataObject) -> None:
    """What /openapi.json describes, called with anything: a 4xx (or 200 for what is valid), or 502
    / 503 when WeChat or Kafka refuse; never an error of ours."""
    segment = st.text(min_size=1, max_size=20).map(lambda text: urllib.parse.quote(text, safe=""))
    kind = data.draw(st.sampled_from(["settings", "raw", "switch", "delete", "read"]))
    body: Any = None
    if kind == "settings":
        method, path = "PUT", f"/v1/shops/{FUZZ_SHOP}/settings"
        body = _mutated(shop_settings() | {"shop_id": FUZZ_SHOP}, data)
    elif kind == "raw":
        method, path = "PUT", f"/v1/shops/{FUZZ_SHOP}/settings"
        body = data.draw(st.binary(max_size=200) | JSON)
    elif kind == "switch":
        scene = data.draw(segment | st.sampled_from(["buyer_order_paid", "buyer_coupon_issued"]))
        channel = data.draw(segment | st.sampled_from(["wechat_oa", "wechat_mp", "aliyun_sms"]))
        action = data.draw(st.sampled_from(["enable", "disable"]))
        method, path = "POST", f"/v1/shops/{FUZZ_SHOP}/scenes/{scene}/{channel}/{action}"
    elif kind == "delete":
        method, path = "DELETE", f"/v1/shops/{FUZZ_SHOP}/templates/{data.draw(segment)}"
    else:
        method, path = "GET", f"/v1/shops/{data.draw(segment)}/settings"
    status, answer = call(api, method, path, PLATFORM_TOKEN, body)
    assert status < 500 or status in (502, 503), (method, path, body, answer)
    if status >= 400:
        assert answer["problems"]


def test_deleting_a_template_the_account_does_not_hold_is_a_404_not_an_outage(api: Service) -> None:
    status, saved = call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, shop_settings())
    assert status == 200, saved
    status, answer = call(api, "DELETE", f"/v1/shops/{SHOP}/templates/no-such-template", SHOP_TOKEN)
    assert status == 404
    assert answer["problems"] == [
        "WeChat refused it (40037: invalid template id): no such template on the shop's account"
    ]
