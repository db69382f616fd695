"""Events published to the real broker come out as WeChat requests, outcomes and dead letters."""

from __future__ import annotations

import re
import uuid

import pytest
from confluent_kafka import Producer

from channels.base import ChannelName, Delivery
from streams.core.failures import header_map
from streams.core.outcomes import Outcome
from streams.core.recipients import person_key
from streams.ops.reading import end_offsets, read_until
from tests.factories import UNFOLLOWED_OPENID, delivery, dispatch, payment_event, to_bytes, with_changes
from tests.integration.conftest import RECIPIENT_KEY, Pipeline
from tests.unit.test_wechat_mp_and_templates import mp_delivery

pytestmark = pytest.mark.integration


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and ",".join(sorted(match[1].split(","))) == wanted:
            return float(match[2])
    return 0.0


def _messages_for(pipeline: Pipeline, order_no: str) -> list[dict[str, object]]:
    return [
        m
        for m in pipeline.sandbox_messages("wechat_oa")
        if m["body"]["data"].get("character_string1", {}).get("value") == order_no
    ]  # type: ignore[index]


def test_a_paid_order_reaches_the_buyer_on_wechat(pipeline: Pipeline) -> None:
    event = payment_event(goods_name="帆布双肩包", pay_amount_fen=15900, paid_at="2026-11-25T04:06:01Z")
    order_no = event["data"]["order_no"]
    [published], outcomes = pipeline.run([to_bytes(event)])
    [outcome] = outcomes[f"{published.topic}[{published.partition}]@{published.offset}"]
    assert outcome.status.value == "delivered"
    assert outcome.event_id == event["id"]
    assert outcome.channel is not None
    assert outcome.channel.value == "wechat_oa"
    [message] = _messages_for(pipeline, order_no)
    assert message["body"] == {
        "touser": event["data"]["buyer"]["oa_openid"],
        "template_id": "Zq3RkV7mC1pT9wXo2bN8sYd4fLh6gJ0aEuKiM5rQvWc",
        "data": {
            "character_string1": {"value": order_no},
            "amount2": {"value": "159.00元"},
            "thing3": {"value": "帆布双肩包"},
            "time4": {"value": "2026-11-25 12:06"},
        },
        "client_msg_id": outcome.delivery_id,
    }


def test_one_orders_events_are_delivered_in_order(pipeline: Pipeline) -> None:
    order_no = f"E-ORD-{uuid.uuid4().hex[:12]}"  # 18 characters: the OA shows 20 of a field
    events = [payment_event(order_no=order_no, goods_name=f"第{i}件") for i in range(5)]
    pipeline.run([to_bytes(event) for event in events])
    sent = [m["body"]["data"]["thing3"]["value"] for m in _messages_for(pipeline, order_no)]  # type: ignore[index]
    assert sent == [f"第{i}件" for i in range(5)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"order_no": "E202611250009", "status": "PAID"', "invalid_json"),
        (to_bytes(with_changes(payment_event(), type="order.chargeback")), "unknown_type"),
        (to_bytes(payment_event(pay_amount_fen="lots")), "schema_invalid"),
    ],
)
def test_bad_input_is_dead_lettered_with_its_reason_and_origin(
    pipeline: Pipeline, raw: bytes, reason: str
) -> None:
    before = _metric(pipeline.metrics(), "mall_notify_dead_lettered_total", stage="parse", reason=reason)
    start = end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter)
    [published], outcomes = pipeline.run([raw])
    [letter] = pipeline.dead_letters_from(start, 1)
    assert letter.value == raw, "the DLQ keeps the original bytes"
    headers = header_map(letter.headers)
    assert headers["x-notify-stage"] == "parse"
    assert headers["x-notify-reason"] == reason
    assert headers["x-notify-origin-topic"] == published.topic
    assert headers["x-notify-origin-partition"] == str(published.partition)
    assert headers["x-notify-origin-offset"] == str(published.offset)
    assert headers["x-notify-detail"]
    [outcome] = outcomes[f"{published.topic}[{published.partition}]@{published.offset}"]
    assert outcome.status.value == "dead_lettered"
    after = _metric(pipeline.metrics(), "mall_notify_dead_lettered_total", stage="parse", reason=reason)
    assert after == before + 1


def test_buyers_who_unfollowed_are_skipped_not_dead_lettered(pipeline: Pipeline) -> None:
    """1,000 buyers who unfollowed the OA: 1,000 skipped outcomes with WeChat's code, each sent
    once and never retried, and not one dead letter."""
    events = [payment_event(buyer={"user_id": f"u-{n}", "oa_openid": UNFOLLOWED_OPENID}) for n in range(1000)]
    letters = end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter)
    _, outcomes = pipeline.run([to_bytes(event) for event in events])
    buyers = [o for found in outcomes.values() for o in found if o.scene == "buyer_order_paid"]
    assert len(buyers) == 1000
    assert {(o.status.value, o.reason, o.provider_code, o.attempts) for o in buyers} == {
        ("skipped", "not_following", "43004", 1)
    }
    assert end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter) == letters
    asked = {o.delivery_id for o in buyers}
    sends = [
        r
        for r in pipeline.sandbox_requests("/cgi-bin/message/template/send")
        if r["body"]["client_msg_id"] in asked
    ]
    assert len(sends) == 1000, "an unreachable buyer is not asked again"


def test_the_worker_keeps_going_after_bad_input(pipeline: Pipeline) -> None:
    good = payment_event()
    values = [b"\xff\xfe not even utf-8", b"null", to_bytes(good)]
    published, outcomes = pipeline.run(values)
    statuses = [[o.status.value for o in outcomes[f"{p.topic}[{p.partition}]@{p.offset}"]] for p in published]
    assert statuses == [["dead_lettered"], ["dead_lettered"], ["delivered"]]
    text = pipeline.metrics()
    assert _metric(text, "mall_notify_outcomes_total", status="delivered", replayed="false") >= 1
    assert _metric(text, "mall_notify_deliveries_total", channel="wechat_oa", outcome="delivered") >= 1
    assert (
        sum(_metric(text, "mall_notify_events_consumed_total", topic=t) for t in pipeline.topics.event_topics)
        >= 3
    )


def _send_directly(pipeline: Pipeline, delivery: Delivery) -> Outcome:
    """Put a rendered delivery on its channel's send topic, as the router would, and await its outcome."""
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    key = person_key(RECIPIENT_KEY.encode(), delivery.channel, delivery.recipient)  # as the router keys it
    producer.produce(pipeline.topics.send_topic(delivery.channel), dispatch(delivery).to_json(), key=key)
    producer.flush(10)
    records = read_until(
        pipeline.bootstrap,
        pipeline.topics.outcomes,
        start,
        lambda rs: any(delivery.delivery_id.encode() == r.key for r in rs),
        60,
    )
    [outcome] = [
        Outcome.model_validate_json(r.value) for r in records if r.key == delivery.delivery_id.encode()
    ]
    return outcome


def test_the_sender_delivers_mini_program_and_sms_messages(pipeline: Pipeline) -> None:
    mp = mp_delivery(
        fields={"character_string1": "E-MP-1", "amount2": "1.00元", "thing3": "x", "time4": "12:00"}
    )
    sms = delivery(
        channel=ChannelName.ALIYUN_SMS,
        account="百客商城",
        recipient="13700001111",
        template_id="SMS_480000002",
        fields={"code": "620417"},
    )
    pipeline.mp_accepts([mp.template_id], openid=mp.recipient)
    assert _send_directly(pipeline, mp).status.value == "delivered"
    assert _send_directly(pipeline, sms).status.value == "delivered"
    channels = {
        m["channel"]
        for m in pipeline.sandbox_messages()
        if m.get("body", {}).get("touser") == mp.recipient
        or m.get("query", {}).get("OutId") == sms.delivery_id
    }
    assert channels == {"wechat_mp", "aliyun_sms"}
