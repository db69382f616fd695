"""The admin API as the integration tests call it: a shop of their own (3003) with its tokens, the
platform's record of it, and one API process per test module."""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from streams.core.tokens import hash_token
from streams.devtools.local_stack import Service, start_api
from tests.factories import ROOT
from tests.integration.conftest import PLATFORM_TOKEN, Pipeline

SHOP = 3003
SHOP_TOKEN, OTHER_TOKEN, ROTATED_TOKEN = "shop-3003-secret-01", "shop-9001-secret-01", "shop-3003-secret-02"
TOKENS = {
    "MALL_NOTIFY_API_PLATFORM_TOKEN": hash_token(PLATFORM_TOKEN),
    "MALL_NOTIFY_API_SHOP_TOKENS": json.dumps(
        {str(SHOP): [SHOP_TOKEN, hash_token(ROTATED_TOKEN)], "9001": OTHER_TOKEN}
    ),
}


@contextmanager
def running_api(pipeline: Pipeline) -> Iterator[Service]:
    """The admin API with the test shop's settings recorded by the platform (its accounts first)."""
    service = start_api(pipeline.log_dir, {**pipeline.worker_env, **TOKENS})
    try:
        status, _ = call(service, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, shop_settings())
        assert status == 200, "the platform records the shop's accounts first"
        yield service
    finally:
        service.stop()


def buy_sms(api: Service) -> None:
    """The test shop buys an SMS package, paid by the platform: its SMS have a balance."""
    status, order = call(api, "POST", f"/v1/shops/{SHOP}/sms/purchases", PLATFORM_TOKEN, {"package": "basic"})
    assert status == 201
    payment = f"/v1/shops/{SHOP}/sms/purchases/{order['purchase_id']}/payment"
    assert call(api, "POST", payment, PLATFORM_TOKEN, {"reason": "tests"})[0] == 200


def call(
    api: Service, method: str, path: str, token: str | None = None, body: dict[str, Any] | bytes | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(api.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.load(reply) if reply.status != 204 else None
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def shop_settings(**oa_rule: Any) -> dict[str, Any]:
    shop = copy.deepcopy(yaml.safe_load((ROOT / "config" / "shops" / "demo.yaml").read_text()))
    shop["shop_id"] = SHOP
    shop["scenes"]["buyer_order_paid"]["wechat_oa"].update(oa_rule)
    return shop


def wait_for_settings(pipeline: Pipeline, expected: dict[str, Any], shop: int = SHOP) -> None:
    """Until the running worker routes with ``expected`` (it follows the settings topic)."""
    deadline = time.monotonic() + 20
    while call(pipeline.worker, "GET", f"/shops/{shop}/settings", PLATFORM_TOKEN)[1] != expected:
        assert time.monotonic() < deadline, "the worker never took the change"
        time.sleep(0.1)
