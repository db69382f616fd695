"""Quiet hours: a shop's night (default 22:00-08:00 Asia/Shanghai, marketing held) or a buyer's own
holds a coupon on the delay buckets until it ends; a transactional notice goes out at once; a
coupon that would end before the night does ends skipped as expired; outcomes say until when a
notice was held."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from channels.base import ChannelName
from streams.core.buyer_choices import NOT_SAID, Choices, parse_notice
from streams.core.dispatch import parse_dispatch
from streams.core.outcomes import Status
from streams.core.quiet_hours import HOLD_HEADER, Window, hold, minute_of
from streams.core.shops import QuietHours, ShopRules
from streams.core.topics import Topics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.lanes.buyers import BuyerStage
from streams.runtime.lanes.forwarder import _due
from streams.runtime.lanes.router import RouterStage
from streams.runtime.lanes.stage import Clock
from tests.factories import DEMO_SHOP, SAMPLE_EVENTS, event, payment_event, to_bytes, with_changes
from tests.unit.test_buyer_choices import Flow
from tests.unit.test_stages import on, outcomes, through

USER = "u-88231"
SHANGHAI = timedelta(hours=8)
NIGHT = datetime(2026, 11, 25, 23, 0, tzinfo=UTC) - SHANGHAI  # 23:00 in Asia/Shanghai
MORNING = datetime(2026, 11, 26, 8, 0, tzinfo=UTC) - SHANGHAI


def coupon(n: int, ends: str = "2026-12-12T15:59:59Z") -> bytes:
    data = {**SAMPLE_EVENTS["coupon.issued"]["data"], "expires_at": ends}
    return to_bytes(with_changes(SAMPLE_EVENTS["coupon.issued"], id=f"evt-coupon-{n}", data=data))


def chose(**data: Any) -> bytes:
    return to_bytes(
        event("preferences.changed", {"user_id": USER, "changed_at": "2026-11-25T04:00:00Z", **data})
    )


class Night(Flow):
    """The router and the buyers lane at a time the test sets, and the deferred lane's hops."""

    def __init__(self, router: RouterStage, buyers: BuyerStage, topics: Topics) -> None:
        super().__init__(router, buyers, topics)
        self.at(NIGHT)

    def at(self, now: datetime) -> None:
        clock: Clock = lambda: now  # noqa: E731
        self.buyers.hours = clock

    def held(self, writes: list[Write]) -> list[Write]:
        return [w for w in writes if w.topic in self.topics.deferred]

    def give_back(self, held: Write) -> list[Write]:
        """What the deferred lane does once the bucket's wait is over: back to the buyers' topic."""
        self.offset += 10
        return through(self.buyers, [replace(held, topic=self.topics.buyers)], self.offset)

    def oa(self, writes: list[Write]) -> list[str]:
        return self.sent(writes, ChannelName.WECHAT_OA)


@pytest.fixture
def night(router: RouterStage, buyers: BuyerStage, topics: Topics) -> Night:
    return Night(router, buyers, topics)


def test_a_coupon_at_night_waits_until_the_window_ends_and_then_goes_out_saying_so(
    night: Night, topics: Topics
) -> None:
    writes = night.publish(coupon(1))
    assert night.oa(writes) == []
    assert outcomes(writes, topics) == []
    [held] = night.held(writes)
    assert (held.topic, held.key) == (topics.deferred[-1], USER.encode()), "9 hours left: the 4h bucket"
    hold_until = _due(ConsumedRecord(held.topic, 0, 0, held.key, held.value, held.headers or []), None)
    assert hold_until == (NIGHT + timedelta(hours=4)).timestamp()
    assert parse_notice(held.value).deferred_until == MORNING.timestamp()

    night.at(MORNING - timedelta(seconds=30))  # read again before the end: held for what is left
    [again] = night.held(night.give_back(held))
    assert again.topic == topics.deferred[0]
    assert dict(again.headers or [])[HOLD_HEADER] == str(MORNING.timestamp()).encode()

    night.at(MORNING + timedelta(seconds=1))
    out = night.give_back(again)
    [sent] = on(out, topics.send_topic(ChannelName.WECHAT_OA))
    assert parse_dispatch(sent.value).deferred_until == MORNING
    assert night.held(out) == []


def test_an_order_notice_at_night_goes_out_at_once(night: Night) -> None:
    assert night.oa(night.publish(to_bytes(payment_event()), "mall.payments")) == ["buyer_order_paid"]


def test_a_coupon_that_ends_before_the_morning_is_skipped_as_expired(night: Night, topics: Topics) -> None:
    writes = night.publish(coupon(1, ends="2026-11-25T18:00:00Z"))  # 02:00 in Shanghai
    assert night.held(writes) == []
    [outcome] = outcomes(writes, topics)
    assert (outcome.status, (outcome.reason or "").split(":")[0]) == (Status.SKIPPED, "expired")
    assert outcome.deferred_until == MORNING, "when it would have gone out"


def test_a_buyers_own_window_replaces_the_shops_and_none_sends_at_any_hour(night: Night) -> None:
    night.publish(chose(quiet_hours="none"), "mall.preferences")
    assert night.oa(night.publish(coupon(1))) == ["buyer_coupon_issued"]

    night.publish(
        chose(quiet_hours={"start": "20:00", "end": "07:00"}, changed_at="2026-11-25T05:00:00Z"),
        "mall.preferences",
    )
    night.at(NIGHT - timedelta(hours=2))  # 21:00: inside the buyer's night, not the shop's
    [held] = night.held(night.publish(coupon(2)))
    assert parse_notice(held.value).deferred_until == (MORNING - timedelta(hours=1)).timestamp()


def test_a_held_coupon_counts_on_the_day_it_goes_out(night: Night, topics: Topics) -> None:
    held = [night.held(night.publish(coupon(n)))[0] for n in range(1, 5)]
    night.at(MORNING + timedelta(minutes=1))
    out = [night.give_back(h) for h in held]
    assert [night.oa(o) for o in out] == [["buyer_coupon_issued"]] * 3 + [[]]
    [capped] = outcomes(out[3], topics)
    assert (capped.reason or "").startswith("frequency_cap")
    assert capped.deferred_until == MORNING


def test_a_window_over_midnight_holds_the_night_and_ends_in_the_morning() -> None:
    window = Window(minute_of("22:00"), minute_of("08:00"), "Asia/Shanghai")
    assert [window.holds(minute_of(t)) for t in ("21:59", "22:00", "03:00", "07:59", "08:00")] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert window.ends_after(NIGHT) == MORNING
    assert window.ends_after(MORNING - timedelta(hours=3)) == MORNING, "after midnight: the same morning"
    assert window.ends_after(MORNING) is None
    day = Window(minute_of("12:00"), minute_of("14:00"), "Asia/Shanghai")
    assert day.ends_after(NIGHT) is None


def test_a_held_notice_waits_in_the_longest_bucket_that_fits() -> None:
    waits = [60.0, 600.0, 3600.0, 14400.0]
    assert [hold(NIGHT + timedelta(seconds=s), NIGHT, waits).bucket for s in (5, 60, 599, 3600, 36000)] == [
        0,
        0,
        0,
        2,
        3,
    ]
    short = hold(NIGHT + timedelta(seconds=5), NIGHT, waits)
    assert short.read_again_at == NIGHT + timedelta(seconds=5), "never later than the notice's own time"


def test_a_shop_cannot_hold_codes_nor_keep_an_empty_or_unknown_window() -> None:
    for wrong, field in (
        ({"categories": ["security"]}, "categories"),
        ({"start": "22:00", "end": "22:00"}, "start"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"start": "25:00"}, "start"),
    ):
        with pytest.raises(ValidationError, match=field):
            QuietHours.model_validate(wrong)
    shop = ShopRules.model_validate({"shop_id": DEMO_SHOP, "name": "x", "quiet_hours": None})
    assert shop.quiet_hours is None


def test_choices_kept_before_quiet_hours_still_read() -> None:
    old = Choices(2, 1.5).pack()[:9]
    assert Choices.unpack(old) == Choices(2, 1.5, NOT_SAID, NOT_SAID)
