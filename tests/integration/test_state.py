"""The partitioned state on the real broker: a restarted worker reads only its changelogs' tail, a
new owner restores a partition from the changelog alone and sends nothing twice, an unreadable
changelog record is skipped and counted, the code limits survive a restart and a move, and what
a lost partition led to is never written twice. In-process workers, so a test can count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from channels.base import ChannelName
from streams.devtools.demo import Settlement, group_outcomes, source_of
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY
from streams.devtools.upstream import publish_values
from streams.ops.reading import end_offsets, read_until
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.topic_reader import read_to_end
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.worker import Worker, run_worker
from tests.conftest import Sandbox
from tests.factories import delivery, dispatch, fresh_code, to_bytes
from tests.integration.in_process import prepared_worker, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DELIVERIES = 200
OA = "send.wechat_oa"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def restored(store: str) -> float:
    return sample("mall_notify_state_restored_records_total", store=store)


class Running:
    """A worker run in this process until the block ends."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(run_worker(self.worker, self.stop))
        await until(lambda: self.worker.readiness.report()[0], 60, "the worker is ready")
        return self.worker

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout=60)


async def _until_metric(read: Callable[[], float], at_least: float, what: str) -> None:
    await until(lambda: read() >= at_least, 60, what)


async def test_a_restart_reads_only_the_tail_and_a_new_owner_restores_and_sends_nothing_twice(
    kafka_bootstrap: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    first = await prepared_worker(kafka_bootstrap, sandbox, "state", lanes=OA, state_dir=tmp_path / "kept")
    topics = first.topics
    same: dict[str, Any] = {"lanes": OA, "topic_prefix": topics.prefix}
    values = [dispatch(delivery()).to_json() for _ in range(DELIVERIES)]
    start = await asyncio.to_thread(end_offsets, kafka_bootstrap, topics.outcomes)
    await asyncio.to_thread(_produce, kafka_bootstrap, topics.send_topic(ChannelName.WECHAT_OA), values)
    async with Running(first):
        await asyncio.to_thread(
            read_until, kafka_bootstrap, topics.outcomes, start, lambda rs: len(rs) >= DELIVERIES, 60
        )
    sent = len(sandbox.state.messages)
    assert sent == DELIVERIES

    before = restored(OA)
    again = await prepared_worker(kafka_bootstrap, sandbox, "state", **same, state_dir=tmp_path / "kept")
    async with Running(again) as worker:
        entries = sum(store.entries() for lane in worker.lanes for store in lane.stores())
    tail = restored(OA) - before
    assert tail < DELIVERIES / 10, f"a restart read {tail} changelog records, not only the tail"
    assert entries >= DELIVERIES, "the entries were on local disk"

    changelog = topics.ledger_topic(topics.send_topic(ChannelName.WECHAT_OA))
    await asyncio.to_thread(_produce_junk, kafka_bootstrap, changelog)
    before = restored(OA)
    unreadable = sample("mall_notify_state_unreadable_records_total", store=OA)
    fresh = await prepared_worker(kafka_bootstrap, sandbox, "state", **same, state_dir=tmp_path / "new")
    suppressed = sample("mall_notify_duplicates_suppressed_total", channel="wechat_oa")
    async with Running(fresh):
        assert restored(OA) - before >= DELIVERIES, "a new owner restores from the changelog alone"
        assert sample("mall_notify_state_unreadable_records_total", store=OA) - unreadable == 1
        await asyncio.to_thread(_produce, kafka_bootstrap, topics.send_topic(ChannelName.WECHAT_OA), values)
        await _until_metric(
            lambda: sample("mall_notify_duplicates_suppressed_total", channel="wechat_oa") - suppressed,
            DELIVERIES,
            "the deliveries read again are found final",
        )
    assert len(sandbox.state.messages) == sent, "a delivery was sent twice"


async def test_a_phones_code_limits_survive_a_restart_and_a_move(
    kafka_bootstrap: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    aliyun = {
        "aliyun_sms_endpoint": sandbox.endpoint,
        "aliyun_sms_protocol": "http",
        "aliyun_access_key_id": SANDBOX_ALIYUN_KEY[0],
        "aliyun_access_key_secret": SANDBOX_ALIYUN_KEY[1],
        "recipient_key": "recipient-key-for-the-tests-0001",
        "lanes": "router,send.codes",
    }
    worker = await prepared_worker(kafka_bootstrap, sandbox, "limits", **aliyun, state_dir=tmp_path / "kept")
    aliyun["topic_prefix"] = worker.topics.prefix
    phone = "13912345678"
    reasons = [await _one_code(kafka_bootstrap, worker, phone)]
    worker = await prepared_worker(kafka_bootstrap, sandbox, "limits", **aliyun, state_dir=tmp_path / "kept")
    reasons.append(await _one_code(kafka_bootstrap, worker, phone))
    worker = await prepared_worker(kafka_bootstrap, sandbox, "limits", **aliyun, state_dir=tmp_path / "moved")
    reasons.append(await _one_code(kafka_bootstrap, worker, phone))
    minute = "phone_limit: at most 1 code(s) in 1 minute to one phone"
    assert reasons == [("delivered", None), ("skipped", minute), ("skipped", minute)]
    assert [m["query"]["PhoneNumbers"] for m in sandbox.state.messages] == [phone]


async def _one_code(bootstrap: str, worker: Worker, phone: str) -> tuple[str, str | None]:
    """Run the worker until the code it is sent has its outcome; that outcome."""
    async with Running(worker):
        start = await asyncio.to_thread(end_offsets, bootstrap, worker.topics.outcomes)
        published = await asyncio.to_thread(
            publish_values, bootstrap, worker.topics, [to_bytes(fresh_code(phone))]
        )
        records = await asyncio.to_thread(
            read_until, bootstrap, worker.topics.outcomes, start, Settlement(published), 30
        )
    [outcome] = group_outcomes(records)[source_of(published[0])]
    return outcome.status.value, outcome.reason


class _Lane:
    """What the committer needs of a lane, for a lane that owns partitions 0 and 1 of ``topic``."""

    name = "lossy"

    def __init__(self, topic: str) -> None:
        self.owned = {(topic, 0), (topic, 1)}

    def committable(self) -> list[Any]:
        return []

    def committed(self, offsets: list[Any]) -> None: ...

    def group_metadata(self) -> object | None:
        return None

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return []

    def metadata_is_stale(self) -> None: ...

    def owns(self, partition: tuple[str, int]) -> bool:
        return partition in self.owned


async def test_what_a_lost_partition_led_to_is_not_written_twice(
    kafka_bootstrap: str, sandbox: Sandbox
) -> None:
    """Partition 0 is lost (not revoked) while its outputs are in the open transaction: they are
    aborted with it, the other partition's outputs are written once, and nothing more of partition 0
    is taken (its new owner reads its records again)."""
    worker = await prepared_worker(kafka_bootstrap, sandbox, "lost", lanes="retry")
    out = worker.topics.outcomes
    source = worker.topics.send_topic(ChannelName.WECHAT_OA)
    transactions = Transactions(kafka_bootstrap, "lost-test")
    lane = _Lane(source)
    stopping = asyncio.Event()
    running = asyncio.create_task(transactions.run(stopping))
    try:
        await until(lambda: transactions._open_transaction, 30, "a transaction is open")
        # no await from here to the commit: no commit can come in between
        for partition, offset in ((0, 1), (1, 1), (0, 2)):
            record = ConsumedRecord(source, partition, offset, None, None, [])
            transactions.hand(lane, record, [Write(out, b"k", f"p{partition}@{offset}".encode())])
        lane.owned.discard((source, 0))
        transactions.lost(lane, [(source, 0)])
        late = ConsumedRecord(source, 0, 3, None, None, [])
        transactions.hand(lane, late, [Write(out, b"k", b"p0@3")])
        await asyncio.wait_for(transactions.commit_now(), 30)
    finally:
        stopping.set()
        await asyncio.wait_for(running, 30)
    written = [m.value() for m in await asyncio.to_thread(read_to_end, kafka_bootstrap, out, None, 30)]
    assert written == [b"p1@1"]


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    for number, value in enumerate(values):
        producer.produce(topic, key=f"order-{number}".encode(), value=value)
    assert producer.flush(30) == 0


def _produce_junk(bootstrap: str, changelog: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(changelog, key=b"junk", value=orjson.dumps("not an entry")[:3], partition=0)
    assert producer.flush(30) == 0
