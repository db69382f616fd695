"""The stages' decisions, with a publisher that records what would be written to Kafka.

The same paths run against the real broker in tests/integration/test_pipeline.py; here the
point is the exact records and headers for each kind of input, fast and without a broker.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from channels.base import ChannelName, Delivery, ErrorClass, SendResult
from streams.catalog import load_catalog, load_shop_rules
from streams.outcomes import Headers, header_map
from streams.stages import ConsumedRecord, RouterStage, SenderStage
from streams.topics import Topics, load_topics
from tests.factories import ROOT, delivery, payment_event, to_bytes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class RecordingPublisher:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, Headers]] = []

    async def publish(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None:
        self.records.append((topic, key, value, headers or []))

    def on(self, topic: str) -> list[tuple[bytes | None, bytes, Headers]]:
        return [(key, value, headers) for name, key, value, headers in self.records if name == topic]


class ScriptedChannel:
    name = ChannelName.WECHAT_OA

    def __init__(self, result: SendResult) -> None:
        self.result = result
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> SendResult:
        self.sent.append(delivery)
        return self.result

    async def close(self) -> None:
        return None


@pytest.fixture
def topics() -> Topics:
    return load_topics(ROOT / "config" / "topics.yaml")


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def router(topics: Topics, publisher: RecordingPublisher) -> RouterStage:
    catalog = load_catalog(ROOT / "config" / "catalog.yaml")
    return RouterStage(
        topics, catalog, load_shop_rules(ROOT / "config" / "shops", catalog), publisher, clock=lambda: NOW
    )


def record(value: bytes, topic: str = "mall.payments", key: bytes | None = b"E1") -> ConsumedRecord:
    return ConsumedRecord(topic, 3, 120, key, value, [])


async def test_a_paid_order_goes_to_the_oa_send_topic(
    router: RouterStage, publisher: RecordingPublisher, topics: Topics
) -> None:
    await router.handle(record(to_bytes(payment_event(order_no="E1"))))
    [(key, value, _)] = publisher.on(topics.send_topic(ChannelName.WECHAT_OA))
    assert key == b"E1"
    assert Delivery.model_validate_json(value).fields["character_string1"] == "E1"
    assert publisher.on(topics.outcomes) == [], "the final outcome is the sender's to write"


async def test_a_malformed_event_is_dead_lettered_byte_for_byte(
    router: RouterStage, publisher: RecordingPublisher, topics: Topics
) -> None:
    raw = b'{"order_no": "E9", "status": "PAID"'
    await router.handle(record(raw, key=b"E9"))
    [(key, value, headers)] = publisher.on(topics.dead_letter)
    assert (key, value) == (b"E9", raw)
    assert header_map(headers) | {"x-dlq-detail": "..."} == {
        "x-dlq-stage": "parse",
        "x-dlq-reason": "invalid_json",
        "x-dlq-detail": "...",
        "x-dlq-source-topic": "mall.payments",
        "x-dlq-source-partition": "3",
        "x-dlq-source-offset": "120",
        "x-dlq-failed-at": NOW.isoformat(),
    }
    [(_, outcome, _)] = publisher.on(topics.outcomes)
    assert orjson.loads(outcome)["status"] == "dead_lettered"


async def test_a_skipped_event_gets_one_outcome_with_the_reason(
    router: RouterStage, publisher: RecordingPublisher, topics: Topics
) -> None:
    await router.handle(record(to_bytes(payment_event(buyer={"user_id": "u1"}))))
    [(_, outcome, _)] = publisher.on(topics.outcomes)
    assert orjson.loads(outcome)["status"] == "skipped"
    assert orjson.loads(outcome)["reason"] == "buyer_order_paid/wechat_oa: the buyer has no wechat_oa address"


async def test_a_permanent_send_failure_is_dead_lettered_with_the_provider_code(
    topics: Topics, publisher: RecordingPublisher
) -> None:
    failure = SendResult.failed(ErrorClass.PERMANENT, "43004", "user does not follow the Official Account")
    channel = ScriptedChannel(failure)
    sender = SenderStage(topics, {ChannelName.WECHAT_OA: channel}, publisher, clock=lambda: NOW)
    sent = delivery()
    raw = sent.model_dump_json().encode()
    await sender.handle(record(raw, topic=topics.send_topic(ChannelName.WECHAT_OA)))
    [(_, value, headers)] = publisher.on(topics.dead_letter)
    assert value == raw
    assert header_map(headers)["x-dlq-provider-code"] == "43004"
    assert header_map(headers)["x-dlq-error-class"] == "permanent"
    assert header_map(headers)["x-dlq-delivery-id"] == sent.delivery_id
    [(key, outcome, _)] = publisher.on(topics.outcomes)
    assert key == sent.delivery_id.encode()
    assert orjson.loads(outcome)["provider_code"] == "43004"


async def test_a_channel_that_raises_does_not_lose_the_delivery(
    topics: Topics, publisher: RecordingPublisher
) -> None:
    class Broken(ScriptedChannel):
        async def send(self, delivery: Delivery) -> SendResult:
            raise RuntimeError("bug")

    sender = SenderStage(topics, {ChannelName.WECHAT_OA: Broken(SendResult.delivered(None))}, publisher)
    await sender.handle(record(delivery().model_dump_json().encode()))
    [(_, _, headers)] = publisher.on(topics.dead_letter)
    assert header_map(headers)["x-dlq-provider-code"] == "internal_error"
