"""Channel fallback (policy first_reachable): a buyer's notice goes out on the first of the shop's
channels; the next one only when the sender answers that the first cannot reach the buyer; one
delivered ends the chain and the channels never tried end skipped; an answer read twice sends
nothing twice; with ``all`` every channel goes at once, as before."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from channels.base import ChannelName, ErrorClass, SendResult
from streams.core.catalog import Catalog
from streams.core.dispatch import parse_dispatch
from streams.core.fallback import ENDED_KIND, Answer, parse_answer
from streams.core.mp_subscriptions import KIND_HEADER
from streams.core.outcomes import Status
from streams.core.render_plan import compile_shop
from streams.core.shop_checks import load_shop_rules, parse_shop_rules, shop_problems
from streams.core.shops import ShopRules
from streams.core.topics import Topics
from streams.runtime.kafka.records import Write
from streams.runtime.lanes.buyers import BuyerStage
from streams.runtime.lanes.router import RouterStage
from tests.factories import BUYER, DEMO_SHOP, ROOT, payment_event, to_bytes
from tests.unit.test_buyer_choices import Flow
from tests.unit.test_stages import ScriptedChannel, on, outcomes, record, sender, through

OA, MP = ChannelName.WECHAT_OA, ChannelName.WECHAT_MP


def with_fallback(catalog: Catalog, **fallback: object) -> ShopRules:
    shop = load_shop_rules(ROOT / "config" / "shops", catalog)[DEMO_SHOP]
    return ShopRules.model_validate(shop.model_dump() | {"fallback": {"buyer_order_paid": fallback}})


class Chain(Flow):
    def answer(self, channel: ChannelName, status: str, unreachable: bool) -> list[Write]:
        """A sender's word on the delivery of the notice of the paid order on ``channel``."""
        self.offset += 10
        [notice_id] = {
            parse_dispatch(w.value).answer_to.notice_id  # type: ignore[union-attr]
            for w in self.sends
        }
        answer = Answer(notice_id, channel, status, unreachable)
        ended = Write(self.topics.buyers, b"u-88231", answer.to_json(), [(KIND_HEADER, ENDED_KIND)])
        return through(self.buyers, [ended], self.offset)

    def paid(self) -> list[Write]:
        writes = self.publish(to_bytes(payment_event(buyer=BUYER)), "mall.payments")  # OA and MP
        self.sends = self.buyers_dispatches(writes)
        return writes

    def buyers_dispatches(self, writes: list[Write]) -> list[Write]:
        """The writes of the buyer's notice of the paid order to the OA and MP send topics."""
        return [
            w
            for w in writes
            if w.topic in (self.topics.send_topic(OA), self.topics.send_topic(MP))
            and parse_dispatch(w.value).scene == "buyer_order_paid"
        ]

    def buyer_sends(self, writes: list[Write]) -> list[tuple[str, ChannelName | None]]:
        dispatches = [parse_dispatch(w.value) for w in self.buyers_dispatches(writes)]
        return [(d.delivery.channel.value, d.fallback_from) for d in dispatches]


@pytest.fixture
def chain(router: RouterStage, buyers: BuyerStage, topics: Topics, catalog: Catalog) -> Chain:
    router.plans[DEMO_SHOP] = compile_shop(with_fallback(catalog, policy="first_reachable"), catalog)  # type: ignore[index]
    return Chain(router, buyers, topics)


def test_an_unfollowed_oa_buyer_is_reached_on_the_mini_program_once(chain: Chain, topics: Topics) -> None:
    assert chain.buyer_sends(chain.paid()) == [("wechat_oa", None)], "the first channel alone"
    assert chain.buyer_sends(chain.answer(OA, "skipped", unreachable=True)) == [("wechat_mp", OA)]
    assert chain.answer(OA, "skipped", unreachable=True) == [], "the same answer again: nothing twice"
    assert chain.answer(MP, "delivered", unreachable=False) == [], "the last channel: nothing left"


def test_a_delivered_first_channel_ends_the_chain_and_the_rest_is_skipped_as_not_needed(
    chain: Chain, topics: Topics
) -> None:
    chain.paid()
    writes = chain.answer(OA, "delivered", unreachable=False)
    assert chain.buyer_sends(writes) == []
    [untried] = outcomes(writes, topics)
    assert (untried.channel, untried.status, untried.reason) == (
        MP,
        Status.SKIPPED,
        "not_needed: the buyer was reached on wechat_oa",
    )
    assert chain.answer(OA, "skipped", unreachable=True) == [], "a late answer after the end: nothing"


def test_a_dead_letter_ends_the_chain_without_trying_the_next(chain: Chain, topics: Topics) -> None:
    chain.paid()
    [untried] = outcomes(chain.answer(OA, "dead_lettered", unreachable=False), topics)
    assert (untried.reason or "").startswith("not_tried: wechat_oa ended dead_lettered")


def test_with_all_every_channel_goes_at_once(
    router: RouterStage, buyers: BuyerStage, topics: Topics, catalog: Catalog
) -> None:
    router.plans[DEMO_SHOP] = compile_shop(with_fallback(catalog, policy="all"), catalog)  # type: ignore[index]
    flow = Chain(router, buyers, topics)
    assert flow.buyer_sends(flow.paid()) == [("wechat_oa", None), ("wechat_mp", None)]
    assert all(parse_dispatch(w.value).answer_to is None for w in flow.sends)


def test_the_sender_answers_the_buyers_lane_with_the_outcome(chain: Chain, topics: Topics) -> None:
    chain.paid()
    [first] = chain.sends
    unfollowed = ScriptedChannel(SendResult.failed(ErrorClass.UNREACHABLE, "43004", "not_following"))
    stage = sender(topics, unfollowed)
    writes = asyncio.run(stage.handle(record(first.value, topic=first.topic, key=first.key)))
    [answer] = on(writes, topics.buyers)
    assert (answer.key, answer.headers) == (b"u-88231", [(KIND_HEADER, ENDED_KIND)])
    said = parse_answer(answer.value)
    assert (said.channel, said.status, said.unreachable) == (OA, "skipped", True)
    [skipped] = outcomes(writes, topics)
    assert skipped.reason == "not_following"


def test_a_fallback_order_names_only_the_scenes_channels(catalog: Catalog) -> None:
    shop = with_fallback(catalog, order=["wechat_oa", "aliyun_sms"])
    assert shop_problems(shop, catalog) == [
        "fallback.buyer_order_paid.order: aliyun_sms not a channel of it (wechat_oa, wechat_mp)"
    ]
    coupon = ShopRules.model_validate(shop.model_dump() | {"fallback": {"code_login": {}}})
    assert "fallback.code_login: not a buyer's notice" in shop_problems(coupon, catalog)[0]


def test_the_shops_order_decides_the_first_channel_and_an_unnamed_one_comes_last(
    router: RouterStage, buyers: BuyerStage, topics: Topics, catalog: Catalog
) -> None:
    shop = with_fallback(catalog, policy="first_reachable", order=["wechat_mp"])
    router.plans[DEMO_SHOP] = compile_shop(shop, catalog)  # type: ignore[index]
    flow = Chain(router, buyers, topics)
    assert flow.buyer_sends(flow.paid()) == [("wechat_mp", None)]
    assert flow.buyer_sends(flow.answer(MP, "skipped", unreachable=True)) == [("wechat_oa", MP)]


def test_an_event_published_twice_while_its_chain_is_under_way_sends_nothing_more(
    chain: Chain, topics: Topics
) -> None:
    value = to_bytes(payment_event(buyer=BUYER))
    chain.sends = chain.buyers_dispatches(chain.publish(value, "mall.payments"))
    again = chain.publish(value, "mall.payments")  # the same event id, read from another offset
    assert chain.buyer_sends(again) == []
    assert sorted(
        (str(o.channel), o.reason) for o in outcomes(again, topics) if o.scene == "buyer_order_paid"
    ) == [
        ("wechat_mp", "duplicate_event"),
        ("wechat_oa", "duplicate_event"),
    ]
    assert chain.buyer_sends(chain.answer(OA, "skipped", unreachable=True)) == [("wechat_mp", OA)]


def test_the_default_order_survives_a_save_and_a_read(catalog: Catalog) -> None:
    shop = with_fallback(catalog, policy="first_reachable")  # no order: OA, MP, SMS where the scene has them
    again = parse_shop_rules(orjson.loads(orjson.dumps(shop.model_dump(mode="json"))), catalog, "read back")
    assert compile_shop(again, catalog).by_trigger["payment.succeeded"][0].fallback == (OA, MP)
