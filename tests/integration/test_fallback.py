"""Channel fallback on the real broker: a shop whose shipping notice goes to the first channel that
reaches the buyer (OA, then the Mini Program, then SMS). A buyer who unfollowed the OA is reached
on the Mini Program; without a Mini Program acceptance, by SMS, charged once; a worker killed
between the first answer and the next send still reaches the buyer on exactly one channel; with
the policy ``all`` every channel goes at once, as before fallback existed."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from streams.core.outcomes import FINAL_STATUSES, Outcome
from streams.devtools.local_stack import Service
from streams.ops.reading import end_offsets, read_until
from tests.factories import SAMPLE_EVENTS, to_bytes
from tests.integration.admin import SHOP, buy_sms, call, shop_settings, wait_for_settings
from tests.integration.conftest import PLATFORM_TOKEN, SETTLE_SECONDS, Pipeline
from tests.integration.test_mp_subscriptions import wechat_knows

pytestmark = pytest.mark.integration
UNFOLLOWED = "oR8sTunfollowed0000000000xYz"  # the sandbox's user who unfollowed the OA (43004)
MP_TEMPLATE = "mp-buyer-order-shipped-v1"


@pytest.fixture(scope="module")
def first_reachable(pipeline: Pipeline, api: Service) -> Iterator[None]:
    """The test shop's shipping notice: OA, then MP, then SMS (enabled with an approved template in
    the sample settings; paid for here)."""
    buy_sms(api)
    settings = shop_settings()
    assert settings["scenes"]["buyer_order_shipped"]["aliyun_sms"] == {"enabled": True}
    settings["fallback"] = {"buyer_order_shipped": {"policy": "first_reachable"}}
    status, saved = call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, settings)
    assert status == 200, saved
    wait_for_settings(pipeline, saved)
    try:
        yield
    finally:
        status, saved = call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, shop_settings())
        assert status == 200, saved
        wait_for_settings(pipeline, saved)


def buyer() -> dict[str, str]:
    number = uuid.uuid4().int
    return {
        "user_id": f"u-{number % 10**12}",
        "oa_openid": UNFOLLOWED,
        "mp_openid": f"oMp{number % 10**24:024d}x",
        "phone": f"137{number % 10**8:08d}",
    }


def accepts(pipeline: Pipeline, to: dict[str, str], wechat_counts: int = 1) -> None:
    """The buyer accepts the shipping notice once on the Mini Program (WeChat knows it too)."""
    wechat_knows(pipeline, to["mp_openid"], wechat_counts)
    pipeline.mp_accepts([MP_TEMPLATE], openid=to["mp_openid"], shop=SHOP)


def shipped(to: dict[str, str]) -> bytes:
    event = SAMPLE_EVENTS["shipment.dispatched"]
    return to_bytes(
        event | {"id": f"evt-{uuid.uuid4().hex}", "shopid": SHOP, "data": event["data"] | {"buyer": to}}
    )


def by_channel(outcomes: list[Outcome]) -> dict[str, tuple[str, str, str | None]]:
    return {
        str(o.channel): (o.status.value, (o.reason or "").split(":")[0], o.fallback_from) for o in outcomes
    }


def balance(api: Service) -> int:
    status, said = call(api, "GET", f"/v1/shops/{SHOP}/sms/balance", PLATFORM_TOKEN)
    assert status == 200, said
    available: int = said["available"]
    return available


def test_an_unfollowed_buyer_is_reached_on_the_mini_program_and_without_it_by_sms_charged_once(
    pipeline: Pipeline, api: Service, first_reachable: None
) -> None:
    on_mp, by_sms = buyer(), buyer()
    accepts(pipeline, on_mp)
    before = balance(api)
    _, finals = pipeline.run([shipped(on_mp), shipped(by_sms)])
    reached_on_mp, reached_by_sms = (by_channel(found) for found in finals.values())
    assert reached_on_mp == {
        "wechat_oa": ("skipped", "not_following", None),
        "wechat_mp": ("delivered", "", "wechat_oa"),
        "aliyun_sms": ("skipped", "not_needed", None),
    }
    assert reached_by_sms == {
        "wechat_oa": ("skipped", "not_following", None),
        "wechat_mp": ("skipped", "no_subscription", "wechat_oa"),
        "aliyun_sms": ("delivered", "", "wechat_mp"),
    }
    sent = [m for m in pipeline.sandbox_messages("aliyun_sms") if by_sms["phone"] in str(m)]
    assert len(sent) == 1, "one SMS, to the buyer the Mini Program could not reach"
    deadline = time.monotonic() + 15
    while before - balance(api) < 1:  # the API follows the SMS account a moment after the sender
        assert time.monotonic() < deadline, "the SMS was never charged"
        time.sleep(0.2)
    time.sleep(1.0)
    assert before - balance(api) == 1, "charged once"


@pytest.mark.slow
def test_a_worker_killed_between_the_first_answer_and_the_next_send_reaches_the_buyer_once(
    pipeline: Pipeline, first_reachable: None
) -> None:
    on_mp = buyer()
    # WeChat allows a second message: a kill during the Mini Program's call itself (no idempotency
    # key on WeChat's side) may send it twice at the provider; what is checked is the pipeline's word
    accepts(pipeline, on_mp, wechat_counts=2)
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    [published] = pipeline.publish([shipped(on_mp)])
    read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, _answered(published.event_id), SETTLE_SECONDS
    )
    pipeline.restart_worker(signal.SIGKILL)  # the OA answered: the next channel is to be sent

    pipeline.outcomes_from(start, lambda o: o.event_id == published.event_id and o.channel == "aliyun_sms")
    records = read_until(pipeline.bootstrap, pipeline.topics.outcomes, start, lambda _: False, 3.0)
    mine = [Outcome.model_validate_json(r.value) for r in records]  # and any duplicate after the last
    finals = [o for o in mine if o.event_id == published.event_id and o.status in FINAL_STATUSES]
    assert sorted((str(o.channel), o.status.value, (o.reason or "").split(":")[0]) for o in finals) == [
        ("aliyun_sms", "skipped", "not_needed"),
        ("wechat_mp", "delivered", ""),
        ("wechat_oa", "skipped", "not_following"),
    ], "one outcome per channel, one channel delivered, no SMS"


def _answered(event_id: str | None) -> Any:
    def done(records: list[Any]) -> bool:
        return any(
            (o := Outcome.model_validate_json(r.value)).event_id == event_id and o.channel == "wechat_oa"
            for r in records
        )

    return done


def test_with_all_every_enabled_channel_goes_at_once_as_before(pipeline: Pipeline, api: Service) -> None:
    buy_sms(api)
    status, before = call(api, "GET", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN)
    assert status == 200, before
    every = before | {"fallback": {"buyer_order_shipped": {"policy": "all"}}}
    status, saved = call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, every)
    assert status == 200, saved
    wait_for_settings(pipeline, saved)
    try:
        to = buyer()
        accepts(pipeline, to)
        _, finals = pipeline.run([shipped(to)])
        [outcomes] = finals.values()
        assert by_channel(outcomes) == {
            "wechat_oa": ("skipped", "not_following", None),
            "wechat_mp": ("delivered", "", None),
            "aliyun_sms": ("delivered", "", None),
        }, "every channel at once, none falling back from another"
    finally:
        status, restored = call(api, "PUT", f"/v1/shops/{SHOP}/settings", PLATFORM_TOKEN, before)
        assert status == 200, restored
        wait_for_settings(pipeline, restored)
