"""Mini Program subscriptions: what a buyer's answers allow, the router forwarding them keyed by
the buyer, and the sender spending them (no call to WeChat without one)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from channels.base import ChannelName, SendResult
from channels.wechat import classify
from streams.core.catalog import Catalog
from streams.core.dispatch import Dispatch, parse_dispatch
from streams.core.failures import Failure
from streams.core.mp_subscriptions import NOTHING, Allowance, Answers, subscribe_templates
from streams.core.outcomes import Status
from streams.core.shops import ShopRules
from streams.core.topics import Topics
from streams.runtime.kafka.records import ConsumedRecord
from streams.runtime.lanes.buyers import BuyerStage
from streams.runtime.lanes.router import RouterStage
from streams.runtime.lanes.sender import SenderStage
from streams.runtime.lanes.subscriptions import Subscriptions
from streams.runtime.state.store import Store
from tests.factories import BUYER, MP_OPENID, dispatch, event, payment_event, to_bytes
from tests.factories import delivery as factory_delivery
from tests.unit.test_stages import (
    BUSY,
    NOW,
    PARTITION,
    ScriptedChannel,
    disk,
    on,
    outcomes,
    owning,
    record,
    through,
)

TEMPLATE = "mP-OrderPaid-4d2c9a7e1b3f5a6c8e0d2b4f6a8c"
BUYER_KEY = b"buyer-key"
SENT = SendResult.delivered("msg-1")


def test_each_one_time_acceptance_allows_one_message() -> None:
    twice = NOTHING.answered("accept", long_term=False).answered("acceptWithAlert", long_term=False)
    assert twice == Allowance(one_time=2)
    assert twice.used().used() == NOTHING
    assert not NOTHING.allows
    assert NOTHING.used() == NOTHING


def test_a_long_term_acceptance_allows_every_message_until_rejected() -> None:
    subscribed = NOTHING.answered("accept", long_term=True)
    assert subscribed.used().used().allows
    assert not subscribed.answered("reject", long_term=True).allows


@pytest.mark.parametrize("answer", ["reject", "ban", "filter"])
def test_what_is_not_an_acceptance_takes_no_one_time_acceptance_back(answer: str) -> None:
    once = NOTHING.answered("accept", long_term=False)
    assert once.answered(answer, long_term=False) == once
    assert NOTHING.answered(answer, long_term=False) == NOTHING


def test_an_allowance_survives_its_stored_form() -> None:
    for allowance in (Allowance(3), Allowance(0, True), Allowance(7, True)):
        assert Allowance.unpack(allowance.pack()) == allowance
    assert Allowance.unpack(b"junk") == NOTHING


def test_the_mini_program_learns_which_template_to_ask_for_per_scene(catalog: Catalog) -> None:
    shop = ShopRules.model_validate(
        {
            "shop_id": 7,
            "name": "s",
            "wechat_mp": {"appid": "wx9c3e7a1b5d2f4e6a08"},
            "scenes": {
                "buyer_order_paid": {"wechat_mp": {"enabled": True, "template_id": TEMPLATE}},
                "buyer_order_shipped": {"wechat_mp": {"enabled": False, "template_id": "x"}},
            },
        }
    )
    asked = ["buyer_order_paid", "buyer_order_shipped", "buyer_order_refunded"]
    templates, not_offered = subscribe_templates(shop, catalog, asked)
    assert templates == {"buyer_order_paid": TEMPLATE}
    assert not_offered == ["buyer_order_shipped", "buyer_order_refunded"]
    with pytest.raises(ValueError, match="no such scene nope"):
        subscribe_templates(shop, catalog, ["nope"])


def answered(results: dict[str, str], long_term: bool = False, openid: str = MP_OPENID) -> bytes:
    data = {
        "openid": openid,
        "results": results,
        "long_term": long_term,
        "answered_at": "2026-11-25T04:06:01Z",
    }
    return to_bytes(event("mp_subscription.answered", data))


def test_the_router_forwards_answers_to_the_mini_programs_topic_keyed_like_the_buyers_deliveries(
    router: RouterStage, buyers: BuyerStage, topics: Topics
) -> None:
    mp = topics.send_topic(ChannelName.WECHAT_MP)
    writes = router.handle(record(answered({TEMPLATE: "accept", "other": "reject"}), "mall.mp_subscriptions"))
    [forwarded] = on(writes, mp)
    assert MP_OPENID.encode() not in (forwarded.value or b""), "the send topic does not carry the openid"
    assert Answers.model_validate_json(forwarded.value or b"").results == {
        TEMPLATE: "accept",
        "other": "reject",
    }
    [outcome] = outcomes(writes, topics)
    assert (outcome.status, outcome.reason) == (Status.SKIPPED, "mp_subscription_answered: 1 accepted, 1 not")
    routed = router.handle(record(to_bytes(payment_event(buyer=BUYER)), key=b"E9", offset=121))
    [delivery] = on(through(buyers, routed), mp)
    assert delivery.key == forwarded.key != b"E9", "a buyer's deliveries and answers share a partition"
    assert parse_dispatch(delivery.value).delivery.recipient == MP_OPENID


def test_an_answer_for_a_template_that_does_not_exist_is_refused(router: RouterStage, topics: Topics) -> None:
    writes = router.handle(record(answered({"bad id!": "accept"}), "mall.mp_subscriptions"))
    [dead] = on(writes, topics.dead_letter)
    failure = Failure.from_headers(dead.headers)
    assert failure is not None
    assert failure.reason == "schema_invalid"
    assert "results" in failure.detail


class MpChannel(ScriptedChannel):
    name = ChannelName.WECHAT_MP


def mp_sender(topics: Topics, channel: MpChannel) -> SenderStage:
    mp = topics.send_topic(ChannelName.WECHAT_MP)
    store = Store("subs", {mp: "changelog"}, disk(), ttl_seconds=86400.0, clock=lambda: NOW.timestamp())
    store.open((mp, PARTITION))
    return SenderStage(
        topics, channel, owning(topics, [mp]), clock=lambda: NOW, subscriptions=Subscriptions(store)
    )


def mp_record(topics: Topics, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> ConsumedRecord:
    return record(value, topic=topics.send_topic(ChannelName.WECHAT_MP), key=BUYER_KEY, headers=headers)


async def buyer_answered(topics: Topics, stage: SenderStage, answer: str, long_term: bool = False) -> None:
    kept = Answers(
        event_id="evt-1",
        shop_id=1001,
        results={TEMPLATE: answer},
        long_term=long_term,
        answered_at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    writes = await stage.handle(mp_record(topics, kept.to_json(), [("mall-notify-kind", b"mp_subscription")]))
    assert outcomes(writes, topics) == [], "an answer is no delivery: the router wrote the event's outcome"


async def test_a_buyer_who_accepted_twice_gets_two_messages_and_the_third_is_skipped_without_a_call(
    topics: Topics,
) -> None:
    channel = MpChannel(SENT)
    stage = mp_sender(topics, channel)
    before = REGISTRY.get_sample_value("mall_notify_mp_not_asked_total") or 0
    for _ in range(2):
        await buyer_answered(topics, stage, "accept")
    results = [await sent_or_skipped(topics, stage) for _ in range(3)]
    assert results == ["delivered", "delivered", "skipped: no_subscription"]
    assert len(channel.sent) == 2, "WeChat was not asked for the third"
    assert (REGISTRY.get_sample_value("mall_notify_mp_not_asked_total") or 0) - before == 1


async def test_a_long_term_subscription_is_not_used_up(topics: Topics) -> None:
    channel = MpChannel(SENT)
    stage = mp_sender(topics, channel)
    await buyer_answered(topics, stage, "accept", long_term=True)
    assert [await sent_or_skipped(topics, stage) for _ in range(3)] == ["delivered"] * 3
    await buyer_answered(topics, stage, "reject", long_term=True)
    assert await sent_or_skipped(topics, stage) == "skipped: no_subscription"


async def test_a_43101_from_wechat_corrects_the_count(topics: Topics) -> None:
    """WeChat knows best: the buyer turned the template off since, say."""
    channel = MpChannel(classify(43101, "user refuse to accept the msg"), SENT)
    stage = mp_sender(topics, channel)
    for _ in range(3):
        await buyer_answered(topics, stage, "accept")
    assert await sent_or_skipped(topics, stage) == "skipped: no_subscription"
    assert await sent_or_skipped(topics, stage) == "skipped: no_subscription"
    assert len(channel.sent) == 1, "the two acceptances counted were not there: not asked again"


async def test_a_failed_send_keeps_the_acceptance_for_its_retry(topics: Topics) -> None:
    channel = MpChannel(BUSY, SENT)
    stage = mp_sender(topics, channel)
    await buyer_answered(topics, stage, "accept")
    writes = await stage.handle(mp_record(topics, mp_delivery().to_json()))
    assert any(write.topic.startswith(topics.name("notify.retry")) for write in writes)
    assert await sent_or_skipped(topics, stage) == "delivered"


def mp_delivery() -> Dispatch:
    message = factory_delivery(channel=ChannelName.WECHAT_MP, recipient=MP_OPENID, template_id=TEMPLATE)
    return dispatch(message, scene="buyer_order_paid")


async def sent_or_skipped(topics: Topics, stage: SenderStage) -> str:
    [outcome] = outcomes(await stage.handle(mp_record(topics, mp_delivery().to_json())), topics)
    return (
        outcome.status.value if outcome.status is Status.DELIVERED else f"{outcome.status}: {outcome.reason}"
    )
