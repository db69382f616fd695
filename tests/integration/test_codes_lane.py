"""Verification codes on their own lane: with 10,000 bulk SMS queued ahead, codes are still sent
at once while the backlog drains. In-process worker with SMS wired to the sandbox, real broker."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Producer

from channels.base import ChannelName
from streams.devtools.demo import Settlement, group_outcomes, source_of
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY
from streams.devtools.upstream import publish_values
from streams.ops.reading import end_offsets, read_until
from streams.runtime.worker import run_worker
from tests.conftest import Sandbox
from tests.factories import delivery, dispatch, fresh_code, to_bytes
from tests.integration.in_process import prepared_worker, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BULK = 10_000
CODES = 5


def _bulk_sms(number: int) -> bytes:
    message = delivery(
        channel=ChannelName.ALIYUN_SMS,
        account="百客商城",
        recipient=f"137{number:08d}",
        template_id="SMS_480000001",
        fields={"code": "000000"},
    )
    return dispatch(message, scene="buyer_order_shipped").to_json()


async def test_codes_are_sent_while_ten_thousand_bulk_sms_wait(
    kafka_bootstrap: str, sandbox: Sandbox
) -> None:
    worker = await prepared_worker(
        kafka_bootstrap,
        sandbox,
        "codes",
        aliyun_sms_endpoint=sandbox.endpoint,
        aliyun_sms_protocol="http",
        aliyun_access_key_id=SANDBOX_ALIYUN_KEY[0],
        aliyun_access_key_secret=SANDBOX_ALIYUN_KEY[1],
    )
    topics = worker.topics
    bulk_topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20})
    for number in range(BULK):
        producer.produce(bulk_topic, key=f"bulk-{number}".encode(), value=_bulk_sms(number))
        if number % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(worker, stop))
    try:
        await until(lambda: worker.readiness.report()[0], 60, "the worker is ready")
        await until(lambda: len(sandbox.state.messages) > 50, 30, "the bulk backlog is being sent")
        start = await asyncio.to_thread(end_offsets, kafka_bootstrap, topics.outcomes)
        events = [to_bytes(fresh_code(f"139{number:08d}")) for number in range(CODES)]
        published = await asyncio.to_thread(publish_values, kafka_bootstrap, topics, events)
        records = await asyncio.to_thread(
            read_until, kafka_bootstrap, topics.outcomes, start, Settlement(published), 30
        )
        grouped = group_outcomes(records)
        statuses = [o.status.value for p in published for o in grouped.get(source_of(p), [])]
        assert statuses == ["delivered"] * CODES
        phones = {m["query"]["PhoneNumbers"] for m in sandbox.state.messages if m["channel"] == "aliyun_sms"}
        assert {f"139{number:08d}" for number in range(CODES)} <= phones
        bulk_lag = worker.readiness.report()[1]["lanes"]["send.aliyun_sms"]["lag"]
        bulk_sent = sum(1 for m in sandbox.state.messages if m["query"]["PhoneNumbers"].startswith("137"))
        assert bulk_sent < BULK / 2, "the codes did not wait for the backlog: most of it is still queued"
        assert bulk_lag > 0 or bulk_sent < BULK
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=60)
