"""The router's and the sender's decisions: the exact records and headers they write for each kind
of input, with a ledger that holds the partition they read. No broker: the stages do no I/O but the
provider call; tests/integration runs the same paths against the real broker."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

import streams.runtime.lanes.stage as stage_module
from channels.base import ChannelName, Delivery, ErrorClass, SendResult
from channels.wechat import classify
from streams.core.dispatch import parse_dispatch
from streams.core.failures import Failure, Headers, header_map
from streams.core.outcomes import Outcome, Status
from streams.core.source import SourceRecord
from streams.core.topics import Topics
from streams.logs import Repeats
from streams.runtime import metrics
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.lanes import sender as sender_lane
from streams.runtime.lanes.buyers import BuyerStage
from streams.runtime.lanes.ledger import Ledger
from streams.runtime.lanes.router import RouterStage
from streams.runtime.lanes.sender import SenderStage
from streams.runtime.state.store import Disk, Store
from tests.factories import dispatch, payment_event, to_bytes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BUSY = SendResult.failed(ErrorClass.TRANSIENT, "-1", "WeChat is busy")
PARTITION = 3


class ScriptedChannel:
    """Answers with the given results in turn (the last one forever)."""

    name = ChannelName.WECHAT_OA

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> SendResult:
        self.sent.append(delivery)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


def on(writes: list[Write], topic: str) -> list[Write]:
    return [write for write in writes if write.topic == topic]


def outcomes(writes: list[Write], topics: Topics) -> list[Outcome]:
    return [Outcome.model_validate_json(write.value or b"") for write in on(writes, topics.outcomes)]


def owning(topics: Topics, consumed: list[str], name: str = "ledger") -> Ledger:
    """A ledger that owns partition PARTITION of the consumed topics, empty, on a disk of its own."""
    store = Store(name, topics.ledgers(consumed), disk(), ttl_seconds=86400.0, clock=lambda: NOW.timestamp())
    for topic in consumed:
        store.open((topic, PARTITION))
    return Ledger(store)


_DIRECTORIES: list[tempfile.TemporaryDirectory[str]] = []
"""the helpers' state directories, deleted when the tests end"""


def disk() -> Disk:
    """A state directory of the test's own (tmp_path is not at hand in the helpers)."""
    directory = tempfile.TemporaryDirectory(prefix="mall-notify-state-", ignore_cleanup_errors=True)
    _DIRECTORIES.append(directory)
    return Disk(Path(directory.name), cache_bytes=4 << 20)


def sender(topics: Topics, channel: ScriptedChannel) -> SenderStage:
    send = topics.send_topic(ChannelName.WECHAT_OA)
    return SenderStage(topics, channel, owning(topics, [send]), clock=lambda: NOW, rand=lambda: 0.5)


def record(
    value: bytes | None,
    topic: str = "mall.payments",
    key: bytes | None = b"E1",
    headers: Headers | None = None,
    offset: int = 120,
) -> ConsumedRecord:
    return ConsumedRecord(topic, PARTITION, offset, key, value, headers or [])


def through(stage: BuyerStage, writes: list[Write], offset: int = 0) -> list[Write]:
    """The writes with each record to the buyers' topic replaced by what the buyers lane makes of
    it (its changelog records left out; the store keeps its changes pending, visible to reads)."""
    out = []
    for number, write in enumerate(writes):
        if write.topic != stage.topics.buyers:
            out.append(write)
            continue
        consumed = ConsumedRecord(
            write.topic, PARTITION, offset + number, write.key, write.value, write.headers or []
        )
        out += [w for w in stage.handle(consumed) if w.topic != stage.topics.buyer_state]
    return out


def send_record(topics: Topics, value: bytes, headers: Headers | None = None) -> ConsumedRecord:
    return record(value, topic=topics.send_topic(ChannelName.WECHAT_OA), headers=headers)


def test_a_paid_order_goes_to_the_oa_send_topic_keyed_like_the_event(
    router: RouterStage, buyers: BuyerStage, topics: Topics
) -> None:
    writes = through(buyers, router.handle(record(to_bytes(payment_event(order_no="E1")))))
    [oa] = on(writes, topics.send_topic(ChannelName.WECHAT_OA))
    assert oa.key == b"E1"
    assert parse_dispatch(oa.value).delivery.fields["character_string1"] == "E1"
    assert outcomes(writes, topics) == [], "the final outcome is the sender's to write"


def test_dead_letters_are_logged_once_per_cause_and_each_at_debug(
    router: RouterStage, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage_module, "DEAD_LETTERS", Repeats(stage_module.log, interval_seconds=30.0))
    with caplog.at_level(logging.DEBUG, logger="mall_notify"):
        for offset in range(3):
            router.handle(record(b"not json", key=b"E9", offset=offset))
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.getMessage() == "dead-lettered"]
    assert [(r.stage, r.reason) for r in debug] == [("parse", "invalid_json")] * 3  # type: ignore[attr-defined]
    summaries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in summaries] == ["dead-lettered (parse, invalid_json)"]


def test_a_malformed_event_is_dead_lettered_byte_for_byte(router: RouterStage, topics: Topics) -> None:
    raw = b'{"order_no": "E9", "status": "PAID"'
    writes = router.handle(record(raw, key=b"E9"))
    [letter] = on(writes, topics.dead_letter)
    assert (letter.key, letter.value) == (b"E9", raw)
    assert header_map(letter.headers) | {"x-notify-detail": "..."} == {
        "x-notify-stage": "parse",
        "x-notify-reason": "invalid_json",
        "x-notify-detail": "...",
        "x-notify-origin-topic": "mall.payments",
        "x-notify-origin-partition": str(PARTITION),
        "x-notify-origin-offset": "120",
        "x-notify-attempts": "1",
        "x-notify-replays": "0",
        "x-notify-first-failed-at": "2026-11-25T12:00:00Z",
        "x-notify-last-failed-at": "2026-11-25T12:00:00Z",
    }
    [outcome] = outcomes(writes, topics)
    assert outcome.status is Status.DEAD_LETTERED
    [entry] = on(writes, topics.ledger_topic("mall.payments"))
    assert entry.partition == PARTITION, "the ledger entry lives on the record's partition"


def test_a_record_too_large_to_copy_is_dead_lettered_as_a_reference(
    router: RouterStage, topics: Topics
) -> None:
    huge = to_bytes(payment_event(goods_name="大" * 400_000))
    writes = router.handle(record(huge))
    [letter] = on(writes, topics.dead_letter)
    reference = orjson.loads(letter.value or b"")["too_large"]
    assert (reference["topic"], reference["partition"], reference["offset"], reference["bytes"]) == (
        "mall.payments",
        PARTITION,
        120,
        len(huge),
    )
    assert len(reference["sha256"]) == 64
    history = header_map(letter.headers)
    assert history["x-notify-reason"] == "too_large"
    assert "schema_invalid" in history["x-notify-detail"], "why it was dead-lettered stays readable"
    [outcome] = outcomes(writes, topics)
    assert outcome.status is Status.DEAD_LETTERED


def test_a_record_read_twice_gets_one_dead_letter(router: RouterStage, topics: Topics) -> None:
    broken = record(b"not json", offset=121)
    writes = router.handle(broken) + router.handle(broken)
    assert [o.status for o in outcomes(writes, topics)] == [Status.DEAD_LETTERED]
    assert len(on(writes, topics.dead_letter)) == 1


def test_a_skipped_event_published_twice_is_skipped_as_a_duplicate_the_second_time(
    router: RouterStage, topics: Topics
) -> None:
    """Upstream sends the same event again (another offset): it ends with an outcome of its own,
    keyed apart from the first one's, so `stats` counts it settled."""
    value = to_bytes(payment_event(buyer={"user_id": "u1"}))
    first = router.handle(record(value, offset=120))
    second = router.handle(record(value, offset=130))
    [duplicate] = outcomes(second, topics)
    assert (duplicate.status, duplicate.reason, duplicate.source.offset) == (
        Status.SKIPPED,
        "duplicate_event",
        130,
    )
    assert [w.topic for w in second] == [topics.outcomes]
    assert on(second, topics.outcomes)[0].key not in {w.key for w in on(first, topics.outcomes)}


async def test_a_delivery_of_an_event_published_twice_is_sent_once_and_the_copy_settled(
    topics: Topics,
) -> None:
    """The router routes the copy again (it keeps no entry per routed event: that would cost a
    write per event); the sender finds the delivery final, from another event record, and ends
    the copy skipped as a duplicate. The same record read again (a replay) writes nothing."""
    channel = ScriptedChannel(SendResult.delivered("1"))
    stage = sender(topics, channel)
    original = dispatch()
    copy = replace(original, source=SourceRecord("mall.payments", 0, 99))
    first = await stage.handle(send_record(topics, original.to_json()))
    again = await stage.handle(send_record(topics, copy.to_json()))
    reread = await stage.handle(send_record(topics, original.to_json()))
    assert len(channel.sent) == 1
    assert [o.status for o in outcomes(first, topics)] == [Status.DELIVERED]
    [duplicate] = outcomes(again, topics)
    assert (duplicate.status, duplicate.reason, duplicate.source.offset) == (
        Status.SKIPPED,
        "duplicate_event",
        99,
    )
    assert reread == []


def test_a_skipped_event_gets_one_outcome_with_the_reason(router: RouterStage, topics: Topics) -> None:
    [outcome] = outcomes(router.handle(record(to_bytes(payment_event(buyer={"user_id": "u1"})))), topics)
    assert outcome.status is Status.SKIPPED
    assert outcome.reason is not None
    assert outcome.reason.startswith("buyer_order_paid/wechat_oa: the buyer has no wechat_oa address; ")


async def test_a_transient_failure_goes_to_the_first_retry_tier(topics: Topics) -> None:
    raw = dispatch().to_json()
    writes = await sender(topics, ScriptedChannel(BUSY)).handle(send_record(topics, raw))
    first_tier = topics.spec.retry.tiers[0]
    [retry] = on(writes, topics.retry_topic(ChannelName.WECHAT_OA, first_tier))
    assert (retry.key, retry.value) == (b"E1", raw)
    failure = Failure.from_headers(retry.headers)
    assert failure is not None
    assert (failure.attempts, failure.provider_code, failure.error_class) == (1, "-1", ErrorClass.TRANSIENT)
    assert failure.due_at == NOW + timedelta(seconds=first_tier.delay_seconds * 1.05)  # jitter 0.1 x rand 0.5
    assert failure.origin.topic == topics.send_topic(ChannelName.WECHAT_OA)
    assert failure.origin.partition == PARTITION
    assert outcomes(writes, topics) == [], "in flight: no final outcome yet"


async def test_an_outage_is_a_few_log_lines_not_one_per_delivery(
    topics: Topics, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_lane, "SUMMARIES", Repeats(sender_lane.log, interval_seconds=30.0))
    stage = sender(topics, ScriptedChannel(BUSY))
    with caplog.at_level(logging.INFO, logger="mall_notify"):
        for _ in range(500):
            await stage.handle(send_record(topics, dispatch().to_json()))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert sorted(lines) == ["wechat_oa: retries scheduled (10s)", "wechat_oa: sends failed (transient, -1)"]


async def test_retries_climb_the_tiers_then_dead_letter(topics: Topics) -> None:
    stage = sender(topics, ScriptedChannel(BUSY))
    raw = dispatch().to_json()
    headers: Headers = []
    tiers = topics.spec.retry.tiers
    for tier in tiers:
        [retry] = on(
            await stage.handle(send_record(topics, raw, headers)),
            topics.retry_topic(ChannelName.WECHAT_OA, tier),
        )
        headers = retry.headers or []
    writes = await stage.handle(send_record(topics, raw, headers))
    [letter] = on(writes, topics.dead_letter)
    assert letter.value == raw
    history = header_map(letter.headers)
    assert history["x-notify-reason"] == "retries_exhausted"
    assert history["x-notify-attempts"] == str(len(tiers) + 1)
    [outcome] = outcomes(writes, topics)
    assert (outcome.status, outcome.attempts, outcome.provider_code) == (
        Status.DEAD_LETTERED,
        len(tiers) + 1,
        "-1",
    )


async def test_a_permanent_failure_is_not_retried(topics: Topics) -> None:
    failure = SendResult.failed(ErrorClass.PERMANENT, "40003", "invalid openid")
    channel = ScriptedChannel(failure)
    sent = dispatch()
    writes = await sender(topics, channel).handle(send_record(topics, sent.to_json()))
    assert len(channel.sent) == 1
    [letter] = on(writes, topics.dead_letter)
    assert header_map(letter.headers)["x-notify-provider-code"] == "40003"
    assert header_map(letter.headers)["x-notify-reason"] == "permanent"
    assert header_map(letter.headers)["x-notify-delivery-id"] == sent.delivery.delivery_id
    assert not any(write.topic.startswith(topics.name("notify.retry")) for write in writes)


@pytest.mark.parametrize(
    ("errcode", "reason"), [(43004, "not_following"), (43101, "no_subscription"), (43019, "blocked_by_user")]
)
async def test_a_buyer_wechat_cannot_reach_is_skipped_not_dead_lettered(
    topics: Topics, errcode: int, reason: str
) -> None:
    """Routine buyer behaviour (unfollowed, no subscription, blocked): nothing to replay or retry."""
    before = REGISTRY.get_sample_value(
        "mall_notify_unreachable_total", {"channel": "wechat_oa", "reason": reason}
    )
    channel = ScriptedChannel(classify(errcode, "from WeChat"))
    writes = await sender(topics, channel).handle(send_record(topics, dispatch().to_json()))
    [outcome] = outcomes(writes, topics)
    assert (outcome.status, outcome.reason, outcome.provider_code, outcome.attempts) == (
        Status.SKIPPED,
        reason,
        str(errcode),
        1,
    )
    assert on(writes, topics.dead_letter) == []
    assert not any(write.topic.startswith(topics.name("notify.retry")) for write in writes)
    after = REGISTRY.get_sample_value(
        "mall_notify_unreachable_total", {"channel": "wechat_oa", "reason": reason}
    )
    assert (after or 0) - (before or 0) == 1


def _replayed(topics: Topics, raw: bytes) -> Headers:
    failure = Failure(
        stage="send",
        reason="permanent",
        detail="",
        origin=send_record(topics, raw).source,
        first_failed_at=NOW,
        last_failed_at=NOW,
    )
    return failure.replayed(NOW).headers()


async def test_a_delivered_id_is_not_sent_again_even_when_replayed(topics: Topics) -> None:
    channel = ScriptedChannel(SendResult.delivered("1"))
    stage = sender(topics, channel)
    raw = dispatch().to_json()
    writes = await stage.handle(send_record(topics, raw))
    writes += await stage.handle(send_record(topics, raw))
    writes += await stage.handle(send_record(topics, raw, _replayed(topics, raw)))
    assert len(channel.sent) == 1
    assert [o.status for o in outcomes(writes, topics)] == [Status.DELIVERED]


async def test_a_replay_of_a_dead_letter_is_sent_again(topics: Topics) -> None:
    channel = ScriptedChannel(
        SendResult.failed(ErrorClass.PERMANENT, "40037", "invalid template id"), SendResult.delivered("2")
    )
    stage = sender(topics, channel)
    raw = dispatch().to_json()
    writes = await stage.handle(send_record(topics, raw))
    writes += await stage.handle(send_record(topics, raw))  # read again after a crash: not a replay
    [letter] = on(writes, topics.dead_letter)
    failure = Failure.from_headers(letter.headers)
    assert failure is not None
    writes += await stage.handle(send_record(topics, raw, failure.replayed(NOW).headers()))
    assert [o.status for o in outcomes(writes, topics)] == [Status.DEAD_LETTERED, Status.DELIVERED]
    assert outcomes(writes, topics)[-1].replayed
    assert len(channel.sent) == 2


async def test_a_channel_that_raises_does_not_lose_the_delivery(topics: Topics) -> None:
    class Broken(ScriptedChannel):
        async def send(self, delivery: Delivery) -> SendResult:
            raise RuntimeError("bug")

    writes = await sender(topics, Broken(BUSY)).handle(send_record(topics, dispatch().to_json()))
    [retry] = on(writes, topics.retry_topic(ChannelName.WECHAT_OA, topics.spec.retry.tiers[0]))
    assert header_map(retry.headers)["x-notify-provider-code"] == "internal_error"


async def test_an_unknown_code_gets_fewer_retries(topics: Topics) -> None:
    unknown = SendResult.failed(ErrorClass.TRANSIENT, "48001", "unknown WeChat error", unknown_code=True)
    stage = sender(topics, ScriptedChannel(unknown))
    raw = dispatch().to_json()
    [retry] = on(
        await stage.handle(send_record(topics, raw)),
        topics.retry_topic(ChannelName.WECHAT_OA, topics.spec.retry.tiers[0]),
    )
    writes = await stage.handle(send_record(topics, raw, retry.headers))
    [letter] = on(writes, topics.dead_letter)
    assert header_map(letter.headers)["x-notify-reason"] == "retries_exhausted"
    assert outcomes(writes, topics)[0].attempts == 2


async def test_a_send_record_that_is_not_a_dispatch_is_dead_lettered(topics: Topics) -> None:
    writes = await sender(topics, ScriptedChannel(BUSY)).handle(send_record(topics, b'{"delivery_id": "x"}'))
    [letter] = on(writes, topics.dead_letter)
    assert header_map(letter.headers)["x-notify-reason"] == "invalid_delivery"
    [outcome] = outcomes(writes, topics)
    assert outcome.status is Status.DEAD_LETTERED


async def test_end_to_end_latency_is_measured_from_the_events_time(topics: Topics) -> None:
    def observed() -> tuple[float, float]:
        labels = {"channel": "wechat_oa"}
        count = REGISTRY.get_sample_value("mall_notify_end_to_end_seconds_count", labels) or 0.0
        total = REGISTRY.get_sample_value("mall_notify_end_to_end_seconds_sum", labels) or 0.0
        return count, total

    count, total = observed()
    raw = dispatch(event_time=NOW - timedelta(seconds=42)).to_json()
    await sender(topics, ScriptedChannel(SendResult.delivered("1"))).handle(send_record(topics, raw))
    assert observed() == (count + 1, total + 42.0)


def test_unknown_provider_codes_fold_into_a_bounded_set() -> None:
    labels = [
        metrics.unknown_code_label("test_channel", f"code-{n}") for n in range(metrics.MAX_UNKNOWN_CODES + 5)
    ]
    assert labels[: metrics.MAX_UNKNOWN_CODES] == [f"code-{n}" for n in range(metrics.MAX_UNKNOWN_CODES)]
    assert set(labels[metrics.MAX_UNKNOWN_CODES :]) == {"other"}
    assert metrics.unknown_code_label("test_channel", "code-3") == "code-3"  # a known one stays itself
