"""Verification codes: their own topic, never sent late, never beyond a phone's limits."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from channels.base import ChannelName, ErrorClass, SendResult
from streams.core.codes import CodeRules, expired, phone_limit, recent
from streams.core.outcomes import Outcome, Status
from streams.core.topics import Topics
from streams.runtime.lanes.code_limits import SENDS, CodeLimits
from streams.runtime.lanes.ledger import Ledger
from streams.runtime.lanes.router import RouterStage
from streams.runtime.lanes.sender import SenderStage
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
    assert expired(NOW - age, NOW, CodeRules(validity_seconds=300)) is not sent


def test_a_phone_gets_one_code_a_minute_five_an_hour_and_ten_a_day() -> None:
    rules = CodeRules()
    sent: list[float] = []
    for at in [minute * 60.0 for minute in (0, 1, 2, 3, 4)]:
        assert phone_limit(sent, at, rules) is None
        sent.append(at)
    assert phone_limit(sent, 4 * 60 + 30, rules) == "phone_limit: at most 1 code(s) in 1 minute to one phone"
    assert phone_limit(sent, 6 * 60, rules) == "phone_limit: at most 5 code(s) in 1 hour to one phone"
    for hour in range(1, 6):
        assert phone_limit(sent, hour * 3600 + 300, rules) is None
        sent.append(hour * 3600 + 300)
    assert phone_limit(sent, 12 * 3600, rules) == "phone_limit: at most 10 code(s) in 1 day to one phone"
    later = 86400 + 5 * 60
    assert (
        phone_limit(recent(sent, later, rules), later, rules) is None
    )  # the first ones left the day's window
    assert len(recent(sent, later, rules)) == 5


def _code_sender(topics: Topics, channel: ScriptedChannel) -> SenderStage:
    ledger: Ledger = owning(topics, [topics.codes])
    ledger.store.tags = (0, SENDS)
    limits = CodeLimits(ledger.store, CodeRules(validity_seconds=300))
    return SenderStage(topics, channel, ledger, clock=lambda: NOW, rand=lambda: 0.5, codes=limits)


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


async def test_a_code_the_provider_refused_does_not_count_against_its_phone(topics: Topics) -> None:
    """An outage must not use up a phone's codes: a refused send is taken back, the next goes out."""
    channel = ScriptedChannel(
        SendResult.failed(ErrorClass.TRANSIENT, "isp.SYSTEM_ERROR", "Aliyun is down"),
        SendResult.delivered("biz-2"),
    )
    stage = _code_sender(topics, channel)
    refused = await stage.handle(record(_code(NOW - timedelta(seconds=2)), topic=topics.codes, offset=1))
    again = await stage.handle(record(_code(NOW - timedelta(seconds=1)), topic=topics.codes, offset=2))
    assert not outcomes(refused, topics), "the refused code waits in a retry tier"
    assert [(o.status, o.reason) for o in outcomes(again, topics)] == [(Status.DELIVERED, None)]
    assert len(channel.sent) == 2
