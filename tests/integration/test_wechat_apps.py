"""A merchant onboarded at run time, on the real broker: the platform registers its Official
Account through the admin API, and its first message goes out with no restart; the AppSecret
replaced (reset in WeChat's console, registered again) is used for the next token; no answer
and no log holds a secret."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from streams.devtools.demo import Settlement
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY, SANDBOX_APP_SECRETS, Service
from streams.ops.reading import end_offsets, read_all, read_until
from tests.factories import BUYER_OPENID, fresh_code, payment_event, to_bytes, with_changes
from tests.integration.admin import SHOP_TOKEN, call
from tests.integration.conftest import PLATFORM_TOKEN, SETTLE_SECONDS, Pipeline

pytestmark = pytest.mark.integration
NEW_SHOP, APPID = 3007, "wx3007a1b2c3d4e5f6a7"
FIRST = SANDBOX_APP_SECRETS[APPID]
REPLACED = "sandbox-oa-secret-3007-reset-0002"
APP = f"/v1/shops/{NEW_SHOP}/wechat/oa"
FINAL = ("delivered", "dead_lettered", "skipped")


def delivered_once(pipeline: Pipeline) -> dict[str, Any]:
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    buyer = {"user_id": "u-3007", "oa_openid": BUYER_OPENID}
    published = pipeline.publish([to_bytes(with_changes(payment_event(buyer=buyer), shopid=NEW_SHOP))])
    records = read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(published), SETTLE_SECONDS
    )
    [outcome] = [
        o
        for r in records
        if (o := orjson.loads(r.value or b""))["status"] in ("delivered", "dead_lettered", "skipped")
    ]
    return dict(outcome)


def token_calls(pipeline: Pipeline) -> int:
    return sum(1 for r in pipeline.sandbox_requests("/cgi-bin/stable_token") if r["body"]["appid"] == APPID)


def test_a_merchant_onboarded_through_the_api_sends_at_once_and_a_replaced_secret_is_used_next(
    pipeline: Pipeline, api: Service
) -> None:
    shop = {"shop_id": NEW_SHOP, "name": "新入驻店"}
    assert call(api, "PUT", f"/v1/shops/{NEW_SHOP}/settings", PLATFORM_TOKEN, shop)[0] == 200
    # only the platform registers an app, and only with a secret that looks like one
    assert call(api, "PUT", APP, SHOP_TOKEN, {"appid": APPID, "secret": FIRST})[0] in (403, 404)
    assert call(api, "PUT", APP, PLATFORM_TOKEN, {"appid": "not-an-appid", "secret": FIRST})[0] == 422
    status, shown = call(api, "PUT", APP, PLATFORM_TOKEN, {"appid": APPID, "secret": FIRST})
    assert status == 200, shown
    assert shown["last4"] == FIRST[-4:]
    assert FIRST not in orjson.dumps(shown).decode()
    _, settings = call(api, "GET", f"/v1/shops/{NEW_SHOP}/settings", PLATFORM_TOKEN)
    assert settings["wechat_oa"] == {"appid": APPID}
    scenes = {
        "buyer_order_paid": {
            "wechat_oa": {"enabled": True, "template": "default", "template_id": "oa-3007-order-paid-v1"}
        }
    }
    assert (
        call(api, "PUT", f"/v1/shops/{NEW_SHOP}/settings", PLATFORM_TOKEN, settings | {"scenes": scenes})[0]
        == 200
    )
    # its first message: the worker, started before the merchant existed, has the secret already
    first = delivered_once(pipeline)
    assert (first["status"], first["channel"]) == ("delivered", "wechat_oa"), first
    tokens = token_calls(pipeline)
    assert tokens >= 1
    # the secret reset in WeChat's console, then registered again: the next message takes a new
    # token with it (the old one was dropped), and the secret shown is the new one's end
    pipeline.tell_sandbox(f"wechat/apps/{APPID}/secret", {"secret": REPLACED})
    status, shown = call(api, "PUT", APP, PLATFORM_TOKEN, {"appid": APPID, "secret": REPLACED})
    assert (status, shown["last4"]) == (200, REPLACED[-4:])
    time.sleep(2)  # the worker follows notify.credentials: well within a couple of seconds
    second = delivered_once(pipeline)
    assert second["status"] == "delivered", second
    assert token_calls(pipeline) == tokens + 1
    _, listed = call(api, "GET", f"/v1/shops/{NEW_SHOP}/wechat", PLATFORM_TOKEN)
    assert [(a["appid"], a["last4"]) for a in listed] == [(APPID, REPLACED[-4:])]
    _, history = call(api, "GET", f"/v1/shops/{NEW_SHOP}/settings/history", PLATFORM_TOKEN)
    assert f"register WeChat Official Account {APPID} (AppSecret ***{REPLACED[-4:]})" in [
        c["action"] for c in history
    ]
    # no log of the worker's or the API's, and nothing on the credentials topic, holds a secret
    logs = "".join(path.read_text() for path in pipeline.log_dir.glob("*.log"))
    assert "wechat app registered" in logs  # the audit line, with the app and its secret's end
    sealed = b"".join(r.value or b"" for r in read_all(pipeline.bootstrap, pipeline.topics.credentials, 30))
    assert APPID.encode() in sealed
    for secret in (FIRST, REPLACED):
        assert secret not in logs
        assert secret not in orjson.dumps(listed).decode()
        assert secret.encode() not in sealed


def test_the_platforms_accesskey_registered_at_run_time_signs_the_next_sms(
    pipeline: Pipeline, api: Service
) -> None:
    new_id, new_secret = "LTAI5tSandboxMallNotify02", "sandbox-aliyun-secret-0002"
    key = "/v1/platform/aliyun"
    assert call(api, "PUT", key, SHOP_TOKEN, {"access_key_id": new_id, "secret": new_secret})[0] == 403
    status, shown = call(api, "PUT", key, PLATFORM_TOKEN, {"access_key_id": new_id, "secret": new_secret})
    assert (status, shown["access_key_id"], shown["last4"]) == (200, new_id, "0002")
    assert new_secret not in orjson.dumps(shown).decode()
    # the configured key switched off in RAM: a code goes out all the same, signed with the new one
    pipeline.tell_sandbox(f"aliyun/access-keys/{SANDBOX_ALIYUN_KEY[0]}?enabled=false", {})
    try:
        time.sleep(2)  # the worker follows notify.credentials
        start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
        published = pipeline.publish([to_bytes(fresh_code())])
        records = read_until(
            pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(published), SETTLE_SECONDS
        )
        [outcome] = [o for r in records if (o := orjson.loads(r.value or b""))["status"] in FINAL]
        assert outcome["status"] == "delivered", outcome
    finally:
        pipeline.tell_sandbox(f"aliyun/access-keys/{SANDBOX_ALIYUN_KEY[0]}?enabled=true", {})
    logs = "".join(path.read_text() for path in pipeline.log_dir.glob("*.log"))
    assert new_secret not in logs
    assert "aliyun access key registered" in logs
