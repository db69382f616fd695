"""What the lanes promise, on the real broker: one channel's slow provider does not hold up another
channel, and a record that is too large to dead-letter as it is does not stop its partition."""

from __future__ import annotations

import uuid

import orjson
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from streams.core.failures import header_map
from streams.devtools.demo import source_of
from streams.ops.reading import end_offsets
from tests.factories import fresh_code, payment_event, to_bytes
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration
OA_SEND = "/cgi-bin/message/template/send"
SMS_LATENCY_MS = 5000


def test_a_slow_sms_provider_does_not_delay_wechat_deliveries(pipeline: Pipeline) -> None:
    pipeline.add_fault(target="SendSms", latency_ms=SMS_LATENCY_MS, count=5)
    codes = [to_bytes(fresh_code()) for _ in range(5)]
    orders = [to_bytes(payment_event()) for _ in range(30)]
    published, outcomes = pipeline.run(codes + orders)  # the codes first: they are routed first
    by_channel: dict[str, set[str]] = {"wechat_oa": set(), "aliyun_sms": set()}
    for item in published:
        for outcome in outcomes[source_of(item)]:
            assert outcome.status.value == "delivered"
            assert outcome.channel is not None
            by_channel[outcome.channel.value].add(str(outcome.delivery_id))
    assert (len(by_channel["aliyun_sms"]), len(by_channel["wechat_oa"])) == (5, 30)
    sms_arrived = [
        r["at"]
        for r in pipeline.sandbox_requests("SendSms")
        if r["query"]["OutId"] in by_channel["aliyun_sms"]
    ]
    first_sms_answer = min(sms_arrived) + SMS_LATENCY_MS / 1000  # the sandbox records calls as they arrive
    oa_sent = [
        r["at"]
        for r in pipeline.sandbox_requests(OA_SEND)
        if r["body"]["client_msg_id"] in by_channel["wechat_oa"]
    ]
    assert len(oa_sent) == 30
    assert max(oa_sent) < first_sms_answer, "a WeChat message waited for an SMS to be answered"


def _accept_records_up_to(bootstrap: str, topic: str, size: int) -> None:
    entry = ConfigEntry("max.message.bytes", str(size), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def test_an_event_too_large_to_dead_letter_is_referenced_and_the_next_events_flow(pipeline: Pipeline) -> None:
    topic = pipeline.topics.event_topic_for("payment.succeeded")
    assert topic is not None
    _accept_records_up_to(pipeline.bootstrap, topic, 2 * 1024 * 1024)
    order_no = f"E-BIG-{uuid.uuid4().hex[:8]}"
    big = to_bytes(payment_event(order_no=order_no, goods_name="大" * 380_000))
    assert len(big) > 1_100_000
    after = [to_bytes(payment_event(order_no=order_no)) for _ in range(3)]  # same key: same partition
    start = end_offsets(pipeline.bootstrap, pipeline.topics.dead_letter)
    published, outcomes = pipeline.run([big, *after], message_max_bytes=3 * 1024 * 1024)
    assert len({(p.topic, p.partition) for p in published}) == 1
    [too_large] = outcomes[source_of(published[0])]
    assert too_large.status.value == "dead_lettered"
    assert too_large.reason is not None
    assert too_large.reason.startswith("too_large")
    assert [[o.status.value for o in outcomes[source_of(p)]] for p in published[1:]] == [["delivered"]] * 3
    [letter] = pipeline.dead_letters_from(start, 1)
    reference = orjson.loads(letter.value or b"")["too_large"]
    assert (reference["topic"], reference["partition"], reference["offset"], reference["bytes"]) == (
        published[0].topic,
        published[0].partition,
        published[0].offset,
        len(big),
    )
    assert header_map(letter.headers)["x-notify-reason"] == "too_large"
