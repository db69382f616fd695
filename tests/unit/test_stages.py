"""The stages' decisions, with a publisher and a ledger that record what would go to Kafka.

The same paths run against the real broker in tests/integration; here the point is the exact
records and headers for each kind of input, fast and without a broker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from channels.base import ChannelName, Delivery, ErrorClass, SendResult
from streams.core.catalog import load_catalog
from streams.core.failures import Failure, Headers, header_map
from streams.core.outcomes import Outcome, Status
from streams.core.shop_checks import load_shop_rules
from streams.core.topics import Topics, load_topics
from streams.runtime.sending import SenderStage
from streams.runtime.stages import ConsumedRecord, RouterStage
from tests.factories import ROOT, delivery, payment_event, to_bytes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BUSY = SendResult.failed(ErrorClass.TRANSIENT, "-1", "WeChat is busy")


class RecordingPublisher:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, Headers]] = []

    async def publish(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None:
        self.records.append((topic, key, value, headers or []))

    def on(self, topic: str) -> list[tuple[bytes | None, bytes, Headers]]:
        return [(key, value, headers) for name, key, value, headers in self.records if name == topic]


class RecordingLedger:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def final(self, key: str) -> Status | None:
        return next((o.status for o in reversed(self.outcomes) if o.key().decode() == key), None)

    async def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


class ScriptedChannel:
    """Answers with the given results in turn (the last one forever)."""

    name = ChannelName.WECHAT_OA

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> SendResult:
        self.sent.append(delivery)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


@pytest.fixture
def topics() -> Topics:
    return load_topics(ROOT / "config" / "topics.yaml")


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def ledger() -> RecordingLedger:
    return RecordingLedger()


@pytest.fixture
def router(topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger) -> RouterStage:
    catalog = load_catalog(ROOT / "config" / "catalog.yaml")
    shops = load_shop_rules(ROOT / "config" / "shops", catalog)
    return RouterStage(topics, catalog, shops, publisher, ledger, clock=lambda: NOW)


def sender(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger, channel: ScriptedChannel
) -> SenderStage:
    return SenderStage(
        topics, {ChannelName.WECHAT_OA: channel}, publisher, ledger, clock=lambda: NOW, rand=lambda: 0.5
    )


def record(
    value: bytes,
    topic: str = "mall.payments",
    key: bytes | None = b"E1",
    headers: Headers | None = None,
    offset: int = 120,
) -> ConsumedRecord:
    return ConsumedRecord(topic, 3, offset, key, value, headers or [])


async def test_a_paid_order_goes_to_the_oa_send_topic(
    router: RouterStage, publisher: RecordingPublisher, ledger: RecordingLedger, topics: Topics
) -> None:
    await router.handle(record(to_bytes(payment_event(order_no="E1"))))
    [(key, value, _)] = publisher.on(topics.send_topic(ChannelName.WECHAT_OA))
    assert key == b"E1"
    assert Delivery.model_validate_json(value).fields["character_string1"] == "E1"
    assert ledger.outcomes == [], "the final outcome is the sender's to write"


async def test_a_malformed_event_is_dead_lettered_byte_for_byte(
    router: RouterStage, publisher: RecordingPublisher, ledger: RecordingLedger, topics: Topics
) -> None:
    raw = b'{"order_no": "E9", "status": "PAID"'
    await router.handle(record(raw, key=b"E9"))
    [(key, value, headers)] = publisher.on(topics.dead_letter)
    assert (key, value) == (b"E9", raw)
    assert header_map(headers) | {"x-notify-detail": "..."} == {
        "x-notify-stage": "parse",
        "x-notify-reason": "invalid_json",
        "x-notify-detail": "...",
        "x-notify-origin-topic": "mall.payments",
        "x-notify-origin-partition": "3",
        "x-notify-origin-offset": "120",
        "x-notify-attempts": "1",
        "x-notify-replays": "0",
        "x-notify-first-failed-at": "2026-11-25T12:00:00Z",
        "x-notify-last-failed-at": "2026-11-25T12:00:00Z",
    }
    [outcome] = ledger.outcomes
    assert outcome.status is Status.DEAD_LETTERED


async def test_an_event_read_twice_gets_one_outcome(
    router: RouterStage, publisher: RecordingPublisher, ledger: RecordingLedger, topics: Topics
) -> None:
    """After a crash before the offset commit the event is read again: no second skip or dead letter."""
    skipped = record(to_bytes(payment_event(buyer={"user_id": "u1"})))
    broken = record(b"not json", offset=121)
    for _ in range(2):
        await router.handle(skipped)
        await router.handle(broken)
    assert [o.status for o in ledger.outcomes] == [Status.SKIPPED, Status.DEAD_LETTERED]
    assert len(publisher.on(topics.dead_letter)) == 1


async def test_a_skipped_event_gets_one_outcome_with_the_reason(
    router: RouterStage, ledger: RecordingLedger
) -> None:
    await router.handle(record(to_bytes(payment_event(buyer={"user_id": "u1"}))))
    [outcome] = ledger.outcomes
    assert outcome.status is Status.SKIPPED
    assert outcome.reason is not None
    assert outcome.reason.startswith("buyer_order_paid/wechat_oa: the buyer has no wechat_oa address; ")


async def test_a_transient_failure_goes_to_the_first_retry_tier(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger
) -> None:
    sent = delivery()
    raw = sent.model_dump_json().encode()
    await sender(topics, publisher, ledger, ScriptedChannel(BUSY)).handle(
        record(raw, topic=topics.send_topic(ChannelName.WECHAT_OA))
    )
    first_tier = topics.spec.retry.tiers[0]
    [(key, value, headers)] = publisher.on(topics.retry_topic(ChannelName.WECHAT_OA, first_tier))
    assert (key, value) == (b"E1", raw)
    failure = Failure.from_headers(headers)
    assert failure is not None
    assert (failure.attempts, failure.provider_code, failure.error_class) == (1, "-1", ErrorClass.TRANSIENT)
    assert failure.due_at == NOW + timedelta(seconds=first_tier.delay_seconds * 1.05)  # jitter 0.1 x rand 0.5
    assert failure.origin.topic == topics.send_topic(ChannelName.WECHAT_OA)
    assert ledger.outcomes == [], "in flight: no final outcome yet"


async def test_retries_climb_the_tiers_then_dead_letter(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger
) -> None:
    stage = sender(topics, publisher, ledger, ScriptedChannel(BUSY))
    raw = delivery().model_dump_json().encode()
    headers: Headers = []
    tiers = topics.spec.retry.tiers
    for tier in tiers:
        await stage.handle(record(raw, headers=headers))
        [(_, _, headers)] = publisher.on(topics.retry_topic(ChannelName.WECHAT_OA, tier))
    await stage.handle(record(raw, headers=headers))
    [(_, value, dlq_headers)] = publisher.on(topics.dead_letter)
    assert value == raw
    history = header_map(dlq_headers)
    assert history["x-notify-reason"] == "retries_exhausted"
    assert history["x-notify-attempts"] == str(len(tiers) + 1)
    [outcome] = ledger.outcomes
    assert (outcome.status, outcome.attempts, outcome.provider_code) == (
        Status.DEAD_LETTERED,
        len(tiers) + 1,
        "-1",
    )


async def test_a_permanent_failure_is_not_retried(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger
) -> None:
    failure = SendResult.failed(ErrorClass.PERMANENT, "43004", "user does not follow the Official Account")
    channel = ScriptedChannel(failure)
    sent = delivery()
    await sender(topics, publisher, ledger, channel).handle(record(sent.model_dump_json().encode()))
    assert len(channel.sent) == 1
    [(_, _, headers)] = publisher.on(topics.dead_letter)
    assert header_map(headers)["x-notify-provider-code"] == "43004"
    assert header_map(headers)["x-notify-reason"] == "permanent"
    assert header_map(headers)["x-notify-delivery-id"] == sent.delivery_id
    assert not any(name.startswith(topics.name("notify.retry")) for name, *_ in publisher.records)


async def test_a_delivered_id_is_not_sent_again_even_when_replayed(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger
) -> None:
    channel = ScriptedChannel(SendResult.delivered("1"))
    stage = sender(topics, publisher, ledger, channel)
    raw = delivery().model_dump_json().encode()
    await stage.handle(record(raw))
    replayed = Failure.from_headers(
        [
            (k, v)
            for k, v in Failure(
                stage="send",
                reason="permanent",
                detail="",
                origin=record(raw).source,
                first_failed_at=NOW,
                last_failed_at=NOW,
            )
            .replayed(NOW)
            .headers()
        ]
    )
    assert replayed is not None
    await stage.handle(record(raw))
    await stage.handle(record(raw, headers=replayed.headers()))
    assert len(channel.sent) == 1
    assert [o.status for o in ledger.outcomes] == [Status.DELIVERED]


async def test_a_replay_of_a_dead_letter_is_sent_again(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger
) -> None:
    channel = ScriptedChannel(
        SendResult.failed(ErrorClass.PERMANENT, "40037", "invalid template id"), SendResult.delivered("2")
    )
    stage = sender(topics, publisher, ledger, channel)
    raw = delivery().model_dump_json().encode()
    await stage.handle(record(raw))
    await stage.handle(record(raw))  # read again after a crash: not a replay, stays dead-lettered
    [(_, _, dlq_headers)] = publisher.on(topics.dead_letter)
    failure = Failure.from_headers(dlq_headers)
    assert failure is not None
    await stage.handle(record(raw, headers=failure.replayed(NOW).headers()))
    assert [o.status for o in ledger.outcomes] == [Status.DEAD_LETTERED, Status.DELIVERED]
    assert ledger.outcomes[-1].replayed
    assert len(channel.sent) == 2


async def test_a_channel_that_raises_does_not_lose_the_delivery(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger
) -> None:
    class Broken(ScriptedChannel):
        async def send(self, delivery: Delivery) -> SendResult:
            raise RuntimeError("bug")

    await sender(topics, publisher, ledger, Broken(BUSY)).handle(
        record(delivery().model_dump_json().encode())
    )
    [(_, _, headers)] = publisher.on(topics.retry_topic(ChannelName.WECHAT_OA, topics.spec.retry.tiers[0]))
    assert header_map(headers)["x-notify-provider-code"] == "internal_error"


async def test_an_unknown_code_gets_fewer_retries(
    topics: Topics, publisher: RecordingPublisher, ledger: RecordingLedger
) -> None:
    unknown = SendResult.failed(ErrorClass.TRANSIENT, "48001", "unknown WeChat error", unknown_code=True)
    stage = sender(topics, publisher, ledger, ScriptedChannel(unknown))
    raw = delivery().model_dump_json().encode()
    await stage.handle(record(raw))
    [(_, _, headers)] = publisher.on(topics.retry_topic(ChannelName.WECHAT_OA, topics.spec.retry.tiers[0]))
    await stage.handle(record(raw, headers=headers))
    [(_, _, dlq_headers)] = publisher.on(topics.dead_letter)
    assert header_map(dlq_headers)["x-notify-reason"] == "retries_exhausted"
    assert orjson.loads(ledger.outcomes[0].to_json())["attempts"] == 2
