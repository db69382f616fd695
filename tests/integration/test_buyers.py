"""Buyers in control, on the real broker: a buyer's no (said through the admin API) holds back what
they refused and never a verification code, and a shop's daily cap on marketing skips the fourth
coupon of a day. Worker, sandbox and admin API as their own processes."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.core.outcomes import Outcome, Status
from streams.devtools.local_stack import Service
from streams.ops.reading import end_offsets, read_until
from streams.runtime.clock import mall_time
from tests.factories import BUYER_OPENID, SAMPLE_EVENTS, fresh_code, payment_event, to_bytes
from tests.integration.admin import SHOP, SHOP_TOKEN, buy_sms, call, shop_settings, wait_for_settings
from tests.integration.conftest import PLATFORM_TOKEN, Pipeline, ok, run_cli
from tests.integration.test_send_log import STORE_SECONDS

pytestmark = pytest.mark.integration


def new_buyer() -> dict[str, str]:
    number = uuid.uuid4().int
    return {"user_id": f"u-{number % 10**12}", "oa_openid": BUYER_OPENID, "phone": f"139{number % 10**8:08d}"}


def coupon(buyer: dict[str, str]) -> bytes:
    issued = SAMPLE_EVENTS["coupon.issued"]
    return to_bytes(
        issued | {"id": f"evt-{uuid.uuid4().hex}", "shopid": SHOP, "data": issued["data"] | {"buyer": buyer}}
    )


def paid(buyer: dict[str, str]) -> bytes:
    return to_bytes(payment_event(buyer=buyer) | {"shopid": SHOP})


def code(buyer: dict[str, str]) -> bytes:
    requested = fresh_code(buyer["phone"])
    return to_bytes(requested | {"shopid": SHOP, "data": requested["data"] | {"user": buyer}})


def refuse(api: Service, pipeline: Pipeline, buyer: dict[str, str], body: dict[str, Any]) -> None:
    """Say it through the API and wait until the router has passed it on (its outcome is written):
    what the buyer is sent after that is decided with it."""
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    status, saved = call(
        api, "PUT", f"/v1/shops/{SHOP}/buyers/{buyer['user_id']}/preferences", SHOP_TOKEN, body
    )
    assert status == 202, saved
    [record] = pipeline.outcomes_from(start, lambda o: o.event_id == saved["event_id"])
    assert Outcome.model_validate_json(record.value).reason == saved["summary"]


def by_scene(finals: dict[str, list[Outcome]]) -> list[tuple[str | None, str | None, str, str]]:
    return sorted(
        (o.scene, o.channel, o.status.value, (o.reason or "").split(":")[0])
        for found in finals.values()
        for o in found
    )


def test_a_buyer_who_refused_marketing_and_sms_gets_no_coupon_but_order_notices_and_codes(
    pipeline: Pipeline, api: Service
) -> None:
    buyer = new_buyer()
    path = f"/v1/shops/{SHOP}/buyers/{buyer['user_id']}/preferences"
    assert call(api, "PUT", path, SHOP_TOKEN, {"scope": "platform"})[0] == 403, "a shop speaks for itself"
    status, refused = call(api, "PUT", path, SHOP_TOKEN, {"categories_off": ["security"]})
    assert status == 422
    assert "categories_off" in refused["problems"][0]
    assert call(api, "PUT", path, PLATFORM_TOKEN, {"channels_off": ["email"]})[0] == 422
    decided = pipeline.metric_total("mall_notify_buyer_decisions_total")
    buy_sms(api)

    refuse(api, pipeline, buyer, {"categories_off": ["marketing"], "channels_off": ["aliyun_sms"]})
    _, finals = pipeline.run([coupon(buyer), paid(buyer), code(buyer)])

    outcomes = by_scene(finals)
    said = kept(lambda: call(api, "GET", path, SHOP_TOKEN)[1], "shop")
    assert (said["shop"]["categories_off"], said["shop"]["channels_off"], said["platform"]) == (
        ["marketing"],
        ["aliyun_sms"],
        None,
    )
    assert call(api, "GET", path.replace(str(SHOP), "9001"), SHOP_TOKEN)[0] == 403
    assert ("buyer_coupon_issued", "wechat_oa", "skipped", "opted_out") in outcomes
    assert ("buyer_order_paid", "wechat_oa", "delivered", "") in outcomes, "transactional: still sent"
    assert ("code_login", "aliyun_sms", "delivered", "") in outcomes, "a code goes out by the refused SMS"
    assert not [o for o in outcomes if o[1] == "aliyun_sms" and o[0] != "code_login" and o[2] == "delivered"]
    pipeline.wait_for_metric_above("mall_notify_buyer_decisions_total", decided)


def test_the_fourth_coupon_of_a_day_is_skipped_and_another_buyer_is_not_held_back(pipeline: Pipeline) -> None:
    buyer, other = new_buyer(), new_buyer()
    _, finals = pipeline.run([coupon(buyer) for _ in range(4)] + [coupon(other)])
    *mine, others = [found for found in finals.values()]  # in the order published
    assert sorted(o.status for found in mine for o in found) == [Status.DELIVERED] * 3 + [Status.SKIPPED]
    [capped] = [o for found in mine for o in found if o.status is Status.SKIPPED]
    assert (capped.scene, capped.channel) == ("buyer_coupon_issued", "wechat_oa")
    assert (capped.reason or "").startswith("frequency_cap: 3 marketing notices today")
    assert [o.status for o in others] == [Status.DELIVERED], "the cap is per buyer"


def test_the_platform_says_a_buyer_refuses_a_channel_in_every_shop_from_the_command_line(
    pipeline: Pipeline, api: Service, tmp_path: Path
) -> None:
    buyer = new_buyer()
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    said = ok(
        run_cli(
            pipeline, "preferences", "set", str(SHOP), buyer["user_id"], "--off", "wechat_oa", "--platform"
        )
    )
    event_id = said.split(":")[0]
    [record] = pipeline.outcomes_from(start, lambda o: o.event_id == event_id)
    assert Outcome.model_validate_json(record.value).reason == "preferences for every shop: wechat_oa off"
    _, finals = pipeline.run([paid(buyer)])
    assert ("buyer_order_paid", "wechat_oa", "skipped", "opted_out") in by_scene(finals)
    shown = kept(
        lambda: json.loads(
            ok(run_cli(pipeline, "preferences", "show", str(SHOP), buyer["user_id"], "--json"))
        ),
        "platform",
    )
    assert (shown["platform"]["channels_off"], shown["shop"]) == (["wechat_oa"], None)
    # explain --buyer says why, before anything is published
    (tmp_path / "paid.json").write_bytes(paid(buyer))
    explained = ok(
        run_cli(pipeline, "explain", str(tmp_path / "paid.json"), "--shop", str(SHOP), "--buyer", "--json")
    )
    skips = {(k["scene"], k["channel"]): k["reason"] for k in json.loads(explained)["skips"]}
    assert skips[("buyer_order_paid", "wechat_oa")] == "opted_out: wechat_oa from the mall"
    assert ("buyer_order_paid", "wechat_oa") not in {
        (s["scene"], s["channel"]) for s in json.loads(explained)["sends"]
    }


def kept(read: Callable[[], dict[str, Any]], scope: str) -> dict[str, Any]:
    """What the send log's database says of a buyer, once it has the scope (the send-log lane
    writes it a moment after the event)."""
    deadline = time.monotonic() + STORE_SECONDS
    while (said := read()).get(scope) is None:
        assert time.monotonic() < deadline, f"the {scope} preferences were not kept: {said}"
        time.sleep(0.2)
    return said


def coupon_ending(buyer: dict[str, str], ends: datetime) -> bytes:
    issued = json.loads(coupon(buyer))
    return to_bytes(issued | {"data": issued["data"] | {"expires_at": ends.isoformat()}})


def test_a_coupon_published_in_quiet_hours_goes_out_when_they_end_and_not_before(
    pipeline: Pipeline, api: Service
) -> None:
    buyer = new_buyer()
    night, morning = mall_time("23:00"), mall_time("08:00", days=1)
    pipeline.set_clock(night)
    try:
        topics = pipeline.topics
        held_from = end_offsets(pipeline.bootstrap, topics.deferred[-1])
        start = end_offsets(pipeline.bootstrap, topics.outcomes)
        values = [coupon(buyer), coupon_ending(buyer, night + timedelta(hours=3)), paid(buyer)]
        held, ending, order = (json.loads(value)["id"] for value in values)
        pipeline.publish(values)
        # the order notice goes out at once, the coupon ending at 02:00 is skipped as expired
        assert pipeline.outcomes_from(start, lambda o: o.event_id == order and o.status is Status.DELIVERED)
        [expired] = pipeline.outcomes_from(start, lambda o: o.event_id == ending)
        outcome = Outcome.model_validate_json(expired.value)
        assert (outcome.status, (outcome.reason or "").split(":")[0]) == (Status.SKIPPED, "expired")
        assert outcome.deferred_until == morning
        # the other coupon waits on the delay topic of its 9 hours, and nothing of it goes out
        waiting = read_until(
            pipeline.bootstrap,
            topics.deferred[-1],
            held_from,
            lambda rs: any(held.encode() in (r.value or b"") for r in rs),
            30.0,
        )
        assert any(held.encode() in (r.value or b"") for r in waiting), "held on the 4h bucket"
        time.sleep(2.0)
        early = read_until(pipeline.bootstrap, topics.outcomes, start, lambda _: False, 1.0)
        assert not [r for r in early if Outcome.model_validate_json(r.value).event_id == held]

        pipeline.set_clock(morning - timedelta(seconds=2))  # the window ends in 2 seconds
        [record] = pipeline.outcomes_from(start, lambda o: o.event_id == held)
        delivered = Outcome.model_validate_json(record.value)
        assert (delivered.status, delivered.scene, delivered.deferred_until) == (
            Status.DELIVERED,
            "buyer_coupon_issued",
            morning,
        )
        # the send log says it too
        since = urllib.parse.quote((delivered.at - timedelta(seconds=1)).isoformat())
        path = f"/v1/shops/{SHOP}/messages?since={since}"
        rows = kept(
            lambda: {"row": next((m for m in listed(api, path) if m["event_id"] == held), None)}, "row"
        )
        assert datetime.fromisoformat(rows["row"]["deferred_until"]) == morning
    finally:
        pipeline.set_clock(mall_time("12:00"))


def listed(api: Service, path: str) -> list[dict[str, Any]]:
    status, page = call(api, "GET", path, SHOP_TOKEN)
    assert status == 200, page
    messages: list[dict[str, Any]] = page["messages"]
    return messages


def test_a_shops_quiet_hours_and_daily_cap_are_set_from_the_command_line(
    pipeline: Pipeline, api: Service
) -> None:
    shop = str(SHOP)
    try:
        said = ok(
            run_cli(pipeline, "settings", "quiet-hours", shop, "21:00-09:00", "--hold", "transactional")
        )
        assert said.strip() == f"saved: shop {SHOP} holds transactional from 21:00 to 09:00 (Asia/Shanghai)"
        refused = run_cli(pipeline, "settings", "quiet-hours", shop, "22:00-08:00", "--hold", "security")
        assert refused.returncode == 3
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "quiet_hours.categories" in refused.stderr, "the field is named"
        said = ok(run_cli(pipeline, "settings", "daily-cap", shop, "marketing", "5"))
        assert said.strip() == f"saved: shop {SHOP}: at most 5 marketing notices a buyer a day"
        assert run_cli(pipeline, "settings", "daily-cap", shop, "security", "1").returncode == 3
        said = ok(
            run_cli(
                pipeline,
                "settings",
                "fallback",
                shop,
                "buyer_order_paid",
                "first_reachable",
                "--order",
                "wechat_mp",
            )
        )
        assert (
            said.strip()
            == f"saved: shop {SHOP} buyer_order_paid: the first that reaches the buyer: wechat_mp"
        )
        refused = run_cli(pipeline, "settings", "fallback", shop, "code_login", "first_reachable")
        assert refused.returncode == 3
        assert "fallback.code_login: not a buyer's notice" in refused.stderr
        shown = json.loads(ok(run_cli(pipeline, "settings", "show", shop, "--json")))
        assert shown["quiet_hours"] == {
            "start": "21:00",
            "end": "09:00",
            "time_zone": "Asia/Shanghai",
            "categories": ["transactional"],
        }
        assert shown["daily_caps"] == {"marketing": 5}
        assert shown["fallback"]["buyer_order_paid"] == {"policy": "first_reachable", "order": ["wechat_mp"]}
    finally:  # the module's shop as it was, before the next test publishes
        status, saved = call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, shop_settings())
        assert status == 200, saved
        wait_for_settings(pipeline, saved)


def test_a_buyer_who_wants_no_quiet_hours_gets_a_coupon_at_night(pipeline: Pipeline, api: Service) -> None:
    buyer = new_buyer()
    path = f"/v1/shops/{SHOP}/buyers/{buyer['user_id']}/preferences"
    status, refused = call(api, "PUT", path, SHOP_TOKEN, {"quiet_hours": {"start": "23:00", "end": "23:00"}})
    assert status == 422
    assert "quiet_hours" in refused["problems"][0]
    refuse(api, pipeline, buyer, {"quiet_hours": "none"})
    pipeline.set_clock(mall_time("23:30"))
    try:
        _, finals = pipeline.run([coupon(buyer)])
    finally:
        pipeline.set_clock(mall_time("12:00"))
    [[outcome]] = finals.values()
    assert (outcome.status, outcome.deferred_until) == (Status.DELIVERED, None)
    said = kept(lambda: call(api, "GET", path, SHOP_TOKEN)[1], "shop")
    assert said["shop"]["quiet_hours"] == "none"
