"""Scaling out the Kafka way, on the real broker: workers share partitions, each holds only the state
of its own, and a rebalance in the middle of a stream neither loses nor repeats a delivery."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from streams.devtools.demo import Settlement, source_of
from streams.devtools.local_stack import Service, start_worker
from streams.ops.reading import end_offsets, read_all, read_until
from streams.ops.shop_store import save_sample_shops
from streams.ops.topic_admin import ensure_topics
from streams.runtime.kafka.clients import idempotent_producer
from tests.factories import payment_event, to_bytes
from tests.integration.conftest import SETTLE_SECONDS, Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OA_SEND = "/cgi-bin/message/template/send"
EVENTS = 2000  # ~20 s at the default 100 sends/s per WeChat app: time for a rebalance mid-stream


def _outcomes_at_least(pipeline: Pipeline, start: dict[int, int], count: int) -> None:
    read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, lambda rs: len(rs) >= count, SETTLE_SECONDS
    )


def test_two_workers_and_rebalances_mid_stream_deliver_each_message_once(pipeline: Pipeline) -> None:
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    published = pipeline.publish([to_bytes(payment_event()) for _ in range(EVENTS)])
    _outcomes_at_least(pipeline, start, EVENTS // 4)
    second = start_worker(pipeline.log_dir, pipeline.worker_env, name=f"worker-b-{uuid.uuid4().hex[:4]}")
    _until(lambda: _partitions(second) > 0, SETTLE_SECONDS, "the second worker holds partitions")
    so_far = read_all(pipeline.bootstrap, pipeline.topics.outcomes, timeout=30)
    assert not Settlement(published)(so_far), "the stream ended before the rebalance: not mid-stream"
    _outcomes_at_least(pipeline, start, 3 * EVENTS // 4)
    assert second.stop() == 0, "the second worker stops cleanly on SIGTERM"

    records = read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(published), 2 * SETTLE_SECONDS
    )
    assert Settlement(published)(records), "some events have no outcome"
    sources = {source_of(p) for p in published}
    mine = [orjson.loads(r.value or b"") for r in records]
    mine = [o for o in mine if "{topic}[{partition}]@{offset}".format(**o["source"]) in sources]
    mine = [o for o in mine if o["status"] not in ("reached", "not_reached")]  # receipts come on top
    per_delivery = Counter(o["delivery_id"] for o in mine)
    assert len(per_delivery) == EVENTS
    assert set(per_delivery.values()) == {1}, "a delivery has two outcomes"
    assert {o["status"] for o in mine} == {"delivered"}
    calls = Counter(
        r["body"]["client_msg_id"]
        for r in pipeline.sandbox_requests(OA_SEND)
        if r["body"]["client_msg_id"] in per_delivery
    )
    assert set(calls.values()) == {1}, f"sent twice: {[d for d, n in calls.items() if n > 1][:5]}"
    assert "partitions assigned" in second.log_path.read_text(), "the second worker took partitions over"


def _partitions(service: Service) -> int:
    """How many partitions the worker's lanes hold, as its /readyz says (200 or 503 alike)."""
    try:
        with urllib.request.urlopen(f"{service.url}/readyz", timeout=5) as reply:
            body = json.load(reply)
    except urllib.error.HTTPError as unready:
        body = json.load(unready)
    return sum(lane["partitions"] for lane in body["lanes"].values())


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def _rss_kib(service: Service) -> int:
    status = Path(f"/proc/{service.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


EVERY_LANE_BUT_SEND_LOG = (
    "router,buyers,send.wechat_oa,send.wechat_mp,send.aliyun_sms,send.codes,retry,receipts"
)


def _restored(service: Service) -> float:
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mall_notify_state_restored_records_total{")
    )


def test_a_workers_start_and_memory_do_not_grow_with_the_outcomes_history(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A worker restores the changelogs of its own partitions when it starts, never the outcomes
    topic. (Its send-log lane, whose job is to read the outcomes into PostgreSQL, is left out here:
    what a backlog costs it is the send log's own test to come.)"""
    prefix = f"hist{uuid.uuid4().hex[:6]}."
    topics_env = {
        **pipeline.worker_env,
        "MALL_NOTIFY_TOPIC_PREFIX": prefix,
        "MALL_NOTIFY_LANES": EVERY_LANE_BUT_SEND_LOG,
    }
    topics = pipeline.topics.__class__(pipeline.topics.spec, prefix)
    ensure_topics(pipeline.bootstrap, topics.all())
    save_sample_shops(pipeline.bootstrap, topics, Path(topics_env["MALL_NOTIFY_CONFIG_DIR"]))

    before = start_worker(tmp_path, topics_env, name="worker-empty-history")
    empty_rss, empty_restored = _rss_kib(before), _restored(before)
    before.stop()

    producer = idempotent_producer(pipeline.bootstrap, linger_ms=50, queue_buffering_max_messages=1_000_000)
    history = orjson.dumps(
        {"status": "delivered", "reason": "x" * 200, "source": {"topic": "t", "partition": 0, "offset": 0}}
    )
    for index in range(300_000):
        producer.produce(topics.outcomes, key=f"d-{index}".encode(), value=history)
        if index % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0

    after = start_worker(tmp_path, topics_env, name="worker-long-history")
    long_rss, long_restored = _rss_kib(after), _restored(after)
    after.stop()
    assert (empty_restored, long_restored) == (0, 0), "nothing to restore: the ledgers are empty"
    assert long_rss - empty_rss < 15 * 1024, f"memory grew by {(long_rss - empty_rss) // 1024} MiB"
