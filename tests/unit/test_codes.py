"""Verification codes: their own topic, never sent late, never beyond a phone's limits."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from channels.base import ChannelName, SendResult
from streams.core.codes import CodeGate, CodeRules, PhoneLimits
from streams.core.outcomes import Outcome, Status
from streams.core.topics import Topics
from streams.runtime.ledger import Ledger
from streams.runtime.router import RouterStage
from streams.runtime.sender import SenderStage
from tests.factories import SAMPLE_EVENTS, delivery, dispatch, to_bytes
from tests.unit.test_stages import NOW, ScriptedChannel, on, outcomes, owning, record

PHONE = "13912340000"


def test_a_code_goes_to_the_codes_topic_and_bulk_sms_does_not(router: RouterStage, topics: Topics) -> None:
    writes = router.handle(record(to_bytes(SAMPLE_EVENTS["auth.code_requested"]), topic="mall.auth"))
    [code] = on(writes, topics.codes)
    assert b'"scene":"code_register"' in (code.value or b"")
    assert not on(writes, topics.send_topic(ChannelName.ALIYUN_SMS))


@pytest.mark.parametrize(
    ("age", "sent"),
    [(timedelta(seconds=299), True), (timedelta(seconds=300), True), (timedelta(seconds=301), False)],
)
def test_a_code_older_than_its_validity_is_not_sent(age: timedelta, sent: bool) -> None:
    gate = CodeGate(CodeRules(validity_seconds=300))
    refusal = gate.refusal(PHONE, NOW - age, NOW)
    assert refusal == (None if sent else "expired")


def test_a_phone_gets_one_code_a_minute_five_an_hour_and_ten_a_day() -> None:
    limits = PhoneLimits(CodeRules())
    day = [minute * 60.0 for minute in (0, 1, 2, 3, 4)]
    for at in day:
        assert limits.refusal(PHONE, at) is None
        limits.sent(PHONE, at)
    assert limits.refusal(PHONE, 4 * 60 + 30) == "phone_limit: at most 1 code(s) in 1 minute to one phone"
    assert limits.refusal(PHONE, 6 * 60) == "phone_limit: at most 5 code(s) in 1 hour to one phone"
    assert limits.refusal("13800000000", 6 * 60) is None  # another phone is not affected
    for hour in range(1, 6):
        assert limits.refusal(PHONE, hour * 3600 + 300) is None
        limits.sent(PHONE, hour * 3600 + 300)
    assert limits.refusal(PHONE, 12 * 3600) == "phone_limit: at most 10 code(s) in 1 day to one phone"
    assert limits.refusal(PHONE, 86400 + 5 * 60) is None  # the first ones left the day's window


def _code_sender(topics: Topics, channel: ScriptedChannel) -> SenderStage:
    gate = CodeGate(CodeRules(validity_seconds=300))
    ledger: Ledger = owning(topics, [topics.codes])
    return SenderStage(topics, channel, ledger, clock=lambda: NOW, rand=lambda: 0.5, codes=gate)


def _code(event_time: datetime) -> bytes:
    message = delivery(
        channel=ChannelName.ALIYUN_SMS, recipient=PHONE, account="百客商城", template_id="SMS_1"
    )
    return dispatch(message, scene="code_register", event_time=event_time).to_json()


async def test_the_codes_lane_skips_an_expired_code_and_a_second_in_a_minute(topics: Topics) -> None:
    channel = ScriptedChannel(SendResult.delivered("biz-1"))
    stage = _code_sender(topics, channel)
    late = await stage.handle(record(_code(NOW - timedelta(minutes=6)), topic=topics.codes, offset=1))
    first = await stage.handle(record(_code(NOW - timedelta(seconds=2)), topic=topics.codes, offset=2))
    second = await stage.handle(record(_code(NOW - timedelta(seconds=1)), topic=topics.codes, offset=3))
    results: list[Outcome] = [o for writes in (late, first, second) for o in outcomes(writes, topics)]
    assert [(o.status, o.reason) for o in results] == [
        (Status.SKIPPED, "expired"),
        (Status.DELIVERED, None),
        (Status.SKIPPED, "phone_limit: at most 1 code(s) in 1 minute to one phone"),
    ]
    assert len(channel.sent) == 1  # Aliyun was asked once
    assert all(o.delivery_id for o in results)  # each delivery settled, with its own outcome
