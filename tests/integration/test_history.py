"""What was sent to one person: across shops for the platform, one shop for its token, found by a
keyed hash, so no outcome holds the phone number; read from the send log in PostgreSQL, which the
workers' send-log lane fills from the outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from streams.devtools.demo import source_of
from streams.devtools.local_stack import Service
from streams.ops.reading import end_offsets, read_until
from tests.factories import ROOT, SAMPLE_EVENTS, event, fresh_code, to_bytes
from tests.integration.admin import SHOP, SHOP_TOKEN, buy_sms, call, running_api
from tests.integration.conftest import PLATFORM_TOKEN, SETTLE_SECONDS, Pipeline
from tests.integration.test_send_log import STORE_SECONDS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(pipeline: Pipeline) -> Iterator[Service]:
    with running_api(pipeline) as service:
        buy_sms(service)
        yield service


def paid_orders_to(pipeline: Pipeline, openid: str, shops: list[int]) -> set[str]:
    """One paid order per shop by a buyer of this openid; the delivery ids of the buyer's OA messages."""
    orders = [
        event(
            "payment.succeeded",
            SAMPLE_EVENTS["payment.succeeded"]["data"] | {"buyer": {"user_id": "u-h", "oa_openid": openid}},
            shop=shop,
        )
        for shop in shops
    ]
    published, outcomes = pipeline.run([to_bytes(order) for order in orders])
    found = {
        o.delivery_id
        for p in published
        for o in outcomes[source_of(p)]
        if o.scene == "buyer_order_paid" and o.channel is not None and o.channel.value == "wechat_oa"
    }
    assert len(found) == len(shops)
    return {d for d in found if d}


def history_of(api: Service, path: str, count: int) -> list[dict[str, Any]]:
    """The platform's answer for ``path``, once it has ``count`` lines (the send log catches up)."""
    deadline = time.monotonic() + STORE_SECONDS
    while True:
        status, lines = call(api, "GET", path, PLATFORM_TOKEN)
        assert status == 200, lines
        if len(lines) >= count or time.monotonic() > deadline:
            return list(lines)
        time.sleep(0.5)


def test_history_lists_exactly_one_persons_messages_across_shops(api: Service, pipeline: Pipeline) -> None:
    openid, other = f"oHist{uuid.uuid4().hex[:23]}", f"oHist{uuid.uuid4().hex[:23]}"
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    mine = paid_orders_to(pipeline, openid, [9001, SHOP])
    paid_orders_to(pipeline, other, [9001])
    # every shop's, for the platform; the same through the command line
    lines = history_of(api, f"/v1/history?openid={openid}", len(mine))
    assert {line["delivery_id"] for line in lines} == mine
    assert {(line["shop_id"], line["scene"], line["channel"], line["status"]) for line in lines} == {
        (9001, "buyer_order_paid", "wechat_oa", "delivered"),
        (SHOP, "buyer_order_paid", "wechat_oa", "delivered"),
    }
    assert {line["recipient"] for line in lines} == {f"{openid[:4]}***{openid[-4:]}"}
    result = subprocess.run(
        [sys.executable, "-m", "streams", "history", "--openid", openid, "--json"],
        cwd=ROOT,
        env={**os.environ, **pipeline.worker_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert {line["delivery_id"] for line in orjson.loads(result.stdout)} == mine
    # a shop sees only its own, and not every shop's
    status, own = call(api, "GET", f"/v1/shops/{SHOP}/history?openid={openid}", SHOP_TOKEN)
    assert status == 200
    assert [line["shop_id"] for line in own] == [SHOP]
    assert call(api, "GET", f"/v1/history?openid={openid}", SHOP_TOKEN)[0] == 403
    assert call(api, "GET", f"/v1/shops/9001/history?openid={openid}", SHOP_TOKEN)[0] == 403
    assert call(api, "GET", f"/v1/history?phone=1&openid={openid}", PLATFORM_TOKEN)[0] == 422
    # and the outcomes never say the openid
    records = read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, lambda rs: len(rs) >= 6, SETTLE_SECONDS
    )
    assert all(openid.encode() not in (record.value or b"") for record in records)


def test_history_by_phone_lists_the_codes_of_both_shops_and_why_one_was_not_sent(
    api: Service, pipeline: Pipeline
) -> None:
    phone, other = f"139{uuid.uuid4().int % 10**8:08d}", f"137{uuid.uuid4().int % 10**8:08d}"
    codes = [fresh_code(phone) | {"shopid": shop, "id": f"evt-{uuid.uuid4().hex}"} for shop in (9001, SHOP)]
    codes.append(fresh_code(other))
    pipeline.run([to_bytes(code) for code in codes])
    lines = history_of(api, f"/v1/history?phone={phone[:3]}-{phone[3:7]}-{phone[7:]}", 2)
    assert sorted(line["shop_id"] for line in lines) == sorted([9001, SHOP])
    # one phone gets one code a minute: the second shop's was skipped, and history says so
    assert sorted(line["status"] for line in lines) == ["delivered", "skipped"]
    [skipped] = [line for line in lines if line["status"] == "skipped"]
    assert skipped["reason"].startswith("phone_limit")
    # the code that went out is in its shop's SMS spend of today, with its segments
    [sent] = [line for line in lines if line["status"] == "delivered"]
    status, spend = call(api, "GET", f"/v1/shops/{sent['shop_id']}/sms/spend?days=1", PLATFORM_TOKEN)
    assert status == 200, spend
    [today] = spend["days"]
    assert today["messages"] >= 1
    assert today["segments"] >= today["messages"]
    assert {line["recipient"] for line in lines} == {f"{phone[:3]}****{phone[-4:]}"}
    status, own = call(api, "GET", f"/v1/shops/{SHOP}/history?phone={phone}", SHOP_TOKEN)
    assert status == 200, own
    assert [line["shop_id"] for line in own] == [SHOP]
