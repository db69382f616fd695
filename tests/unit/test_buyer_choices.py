"""Buyers in control: a buyer's no per category and channel (for one shop or the whole mall) and a
shop's daily cap on marketing, as the router and the buyers lane decide them together. A security
notice (a verification code) is never held back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from channels.base import ChannelName
from streams.core.buyer_choices import NO_CHOICES, Choices, DayCount, admit, buyer_choices, refusal
from streams.core.dispatch import parse_dispatch
from streams.core.events import PreferencesChanged
from streams.core.failures import Failure
from streams.core.outcomes import Status
from streams.core.send_log import choice_row
from streams.core.topics import Topics
from streams.runtime.kafka.records import Write
from streams.runtime.lanes.buyers import BuyerStage
from streams.runtime.lanes.router import RouterStage
from tests.factories import DEMO_SHOP, SAMPLE_EVENTS, event, payment_event, to_bytes, with_changes
from tests.unit.test_stages import NOW, on, outcomes, record, through

USER = "u-88231"  # the buyer of the sample events


def chose(when: str = "2026-11-25T04:00:00Z", **data: Any) -> bytes:
    return to_bytes(event("preferences.changed", {"user_id": USER, "changed_at": when, **data}))


def coupon(n: int) -> bytes:
    return to_bytes(with_changes(SAMPLE_EVENTS["coupon.issued"], id=f"evt-coupon-{n}"))


class Flow:
    """Events through the router and the buyers lane, as the worker runs them."""

    def __init__(self, router: RouterStage, buyers: BuyerStage, topics: Topics) -> None:
        self.router, self.buyers, self.topics = router, buyers, topics
        self.offset = 0

    def publish(self, raw: bytes, topic: str = "mall.coupons") -> list[Write]:
        self.offset += 10
        return through(
            self.buyers, self.router.handle(record(raw, topic=topic, offset=self.offset)), self.offset
        )

    def sent(self, writes: list[Write], channel: ChannelName) -> list[str]:
        return [parse_dispatch(w.value).scene for w in on(writes, self.topics.send_topic(channel))]

    def skipped(self, writes: list[Write]) -> list[tuple[str | None, str | None, str]]:
        return [
            (o.scene, o.channel.value if o.channel else None, (o.reason or "").split(":")[0])
            for o in outcomes(writes, self.topics)
            if o.status is Status.SKIPPED and o.delivery_id is not None
        ]


@pytest.fixture
def flow(router: RouterStage, buyers: BuyerStage, topics: Topics) -> Flow:
    return Flow(router, buyers, topics)


def test_a_buyer_who_refuses_a_shops_marketing_gets_no_coupon_but_still_order_notices_and_codes(
    flow: Flow, topics: Topics
) -> None:
    said = flow.publish(chose(categories_off=["marketing"], channels_off=["aliyun_sms"]), "mall.preferences")
    [outcome] = outcomes(said, topics)
    assert outcome.reason == f"preferences for shop {DEMO_SHOP}: marketing, aliyun_sms off"

    held = flow.publish(coupon(1))
    assert flow.sent(held, ChannelName.WECHAT_OA) == []
    assert flow.skipped(held) == [("buyer_coupon_issued", "wechat_oa", "opted_out")]

    paid = flow.publish(to_bytes(payment_event()), "mall.payments")
    assert flow.sent(paid, ChannelName.WECHAT_OA) == ["buyer_order_paid"], "transactional: still sent"

    code = flow.publish(to_bytes(SAMPLE_EVENTS["auth.code_requested"]), "mall.auth")
    assert [w.topic for w in code] == [topics.codes], "a code goes out even by the refused SMS"


def test_a_no_for_the_whole_mall_holds_a_channel_back_and_a_shop_scope_cannot_undo_it(
    flow: Flow,
) -> None:
    flow.publish(chose(scope="platform", channels_off=["wechat_oa"]), "mall.preferences")
    flow.publish(chose(categories_off=[]), "mall.preferences")  # everything on, for this shop only
    paid = flow.publish(to_bytes(payment_event()), "mall.payments")
    assert flow.sent(paid, ChannelName.WECHAT_OA) == []
    assert ("buyer_order_paid", "wechat_oa", "opted_out") in flow.skipped(paid)

    flow.publish(chose("2026-11-25T05:00:00Z", scope="platform"), "mall.preferences")
    paid = flow.publish(to_bytes(payment_event()), "mall.payments")
    assert flow.sent(paid, ChannelName.WECHAT_OA) == ["buyer_order_paid"]


def test_an_older_change_read_late_does_not_replace_a_newer_one(flow: Flow) -> None:
    flow.publish(chose("2026-11-25T05:00:00Z", categories_off=["marketing"]), "mall.preferences")
    flow.publish(chose("2026-11-25T04:00:00Z"), "mall.preferences")  # the older "everything on"
    assert flow.skipped(flow.publish(coupon(1))) == [("buyer_coupon_issued", "wechat_oa", "opted_out")]


def test_security_notices_cannot_be_refused(flow: Flow, topics: Topics) -> None:
    writes = flow.publish(chose(categories_off=["security"]), "mall.preferences")
    [dead] = on(writes, topics.dead_letter)
    failure = Failure.from_headers(dead.headers or [])
    assert failure is not None
    assert (failure.reason, "categories_off" in failure.detail) == ("schema_invalid", True)
    assert on(writes, topics.buyers) == [], "nothing of it was kept"
    assert refusal("security", ChannelName.ALIYUN_SMS, Choices(frozenset({"security"})), NO_CHOICES) is None


def test_the_fourth_marketing_notice_of_a_day_is_skipped_and_a_new_day_starts_afresh(
    flow: Flow, buyers: BuyerStage
) -> None:
    sent = [flow.sent(flow.publish(coupon(n)), ChannelName.WECHAT_OA) for n in range(1, 5)]
    assert sent == [["buyer_coupon_issued"]] * 3 + [[]]
    fourth = flow.publish(coupon(4))
    assert flow.skipped(fourth) == [("buyer_coupon_issued", "wechat_oa", "frequency_cap")]

    again = flow.publish(coupon(1))
    assert flow.sent(again, ChannelName.WECHAT_OA) == ["buyer_coupon_issued"], (
        "a notice counted before is not refused for its own count (its sender drops the copy)"
    )
    paid = flow.publish(to_bytes(payment_event()), "mall.payments")
    assert flow.sent(paid, ChannelName.WECHAT_OA) == ["buyer_order_paid"], "transactional is not capped"

    buyers.hours = lambda: NOW + timedelta(days=1)
    assert flow.sent(flow.publish(coupon(5)), ChannelName.WECHAT_OA) == ["buyer_coupon_issued"]


def test_a_count_is_per_day_in_the_malls_time_and_each_notice_counts_once() -> None:
    count = DayCount("20261125")
    ok, count = admit(count, "evt-1|buyer_coupon_issued", cap=2)
    ok_again, same = admit(count, "evt-1|buyer_coupon_issued", cap=2)
    assert (ok, ok_again, same) == (True, True, count)
    _, full = admit(count, "evt-2|buyer_coupon_issued", cap=2)
    assert admit(full, "evt-3|buyer_coupon_issued", cap=2)[0] is False
    assert admit(full, "evt-3|buyer_coupon_issued", cap=None) == (True, full), "no cap: nothing counted"
    assert full.on("20261126") == DayCount("20261126")
    assert DayCount.unpack(full.pack()) == full


def test_the_send_log_keeps_a_buyers_word_per_scope_and_shows_both() -> None:
    said = PreferencesChanged.model_validate(
        {
            "user_id": USER,
            "scope": "platform",
            "channels_off": ["wechat_oa", "wechat_oa"],
            "changed_at": NOW.isoformat(),
        }
    )
    row = choice_row(said, DEMO_SHOP)
    assert (row.kind, row.values["scope"], row.values["channels_off"]) == (
        "choice",
        "platform",
        ["wechat_oa"],
    )
    shop_row = {
        "scope": str(DEMO_SHOP),
        "categories_off": ["marketing"],
        "channels_off": [],
        "changed_at": NOW,
    }
    shown = buyer_choices(USER, [shop_row, row.values])
    assert shown.shop is not None
    assert shown.shop.categories_off == ["marketing"]
    assert shown.platform is not None
    assert shown.platform.channels_off == ["wechat_oa"]
    assert buyer_choices(USER, []).model_dump() == {"user_id": USER, "shop": None, "platform": None}
