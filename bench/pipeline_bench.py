"""`make bench`: side by side, in one run, on one broker and the same preloaded paid orders:

1. a plain confluent-kafka loop: consume -> produce the same bytes -> commit, per batch (the limit);
2. a faust agent passing each record through (`await topic.send`);
3. our router alone (`MALL_NOTIFY_LANES=router`): parse, route, render, 3 dispatches per event;
4. the pipeline end to end with the provider sandbox, until every delivery's outcome is written;
5. WeChat OA throughput while Aliyun SMS answers in 2 s, next to it with SMS answering at once.

Rates come from the Kafka timestamps of what each one wrote (first to last record), and a figure
is only reported after checking that what it measured happened: every record passed through,
every dispatch and outcome written, every message accepted by the sandbox. Writes
docs/BENCHMARKS.md with the machine and the versions. Sizes: BENCH_EVENTS (50,000),
BENCH_OA (20,000), BENCH_SMS (2,000).
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import confluent_kafka
import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.core.topics import Topics, load_topics
from streams.devtools.local_stack import sandbox_channel_env, start_sandbox, start_worker
from streams.devtools.upstream import publish_values
from streams.ops.shop_store import load_config_shops, publish_shops
from streams.ops.topic_admin import ensure_topics
from streams.runtime.clients import idempotent_producer, reader_config
from streams.runtime.topic_reader import read_to_end
from streams.settings import PROJECT_ROOT

EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
OA_EVENTS = int(os.environ.get("BENCH_OA", "20000"))
SMS_EVENTS = int(os.environ.get("BENCH_SMS", "2000"))
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
CONFIG = PROJECT_ROOT / "config"
MP_APPID, MP_TEMPLATE = "wx9c3e7a1b5d2f4e6a08", "mP-OrderPaid-4d2c9a7e1b3f5a6c8e0d2b4f6a8c"
BUYER = {
    "user_id": "u-bench",
    "oa_openid": "oBenchBuyer0000000000000001",
    "mp_openid": "oBenchBuyerMp00000000000001",
}
SELLER = {"user_id": "s-bench", "oa_openid": "oBenchSeller000000000000001"}
UNLIMITED = {
    "MALL_NOTIFY_WECHAT_APP_RATE_PER_SECOND": "1000000",
    "MALL_NOTIFY_WECHAT_APP_CONCURRENCY": "512",
    "MALL_NOTIFY_LOG_LEVEL": "WARNING",
}


def paid_order(index: int, buyer: dict[str, str], seller: dict[str, str] | None) -> bytes:
    data: dict[str, object] = {
        "order_no": f"B{index:08d}-{uuid.uuid4().hex[:6]}",
        "buyer": buyer,
        "goods_name": "基准测试商品 纯棉短袖T恤",
        "pay_amount_fen": 100 + index,
        "paid_at": "2026-11-25T12:00:00Z",
    }
    if seller:
        data["seller"] = seller
    event = {
        "specversion": "1.0",
        "id": f"bench-{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "source": "/bench",
        "time": "2026-11-25T12:00:00Z",
        "shopid": 1001,
        "data": data,
    }
    return orjson.dumps(event)


def code_requested() -> bytes:
    phone = f"13{random.randrange(10**9):09d}"
    data = {"user": {"user_id": f"u-{phone}", "phone": phone}, "purpose": "login", "code": "620417"}
    event = {
        "specversion": "1.0",
        "id": f"bench-{uuid.uuid4().hex}",
        "type": "auth.code_requested",
        "source": "/bench",
        "time": "2026-11-25T12:00:00Z",
        "shopid": 1001,
        "data": data,
    }
    return orjson.dumps(event)


@dataclass(frozen=True)
class Measured:
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def written(topic: str, keep: object = None) -> tuple[int, float]:
    """How many committed records ``topic`` holds (optionally only those ``keep(value)`` accepts)
    and the seconds from the first to the last one's timestamp."""
    count, first, last = 0, float("inf"), 0.0
    for message in read_to_end(BOOTSTRAP, topic, None, 600):
        if keep is not None and not keep(message.value()):  # type: ignore[operator]
            continue
        stamp = message.timestamp()[1] / 1000
        count, first, last = count + 1, min(first, stamp), max(last, stamp)
    return count, max(last - first, 1e-3)


def fresh(name: str) -> Topics:
    """A prefix of its own, its topics, the demo shop's settings."""
    topics = load_topics(CONFIG / "topics.yaml", f"bench{uuid.uuid4().hex[:6]}{name}.")
    ensure_topics(BOOTSTRAP, topics.all())
    publish_shops(BOOTSTRAP, topics.settings, load_config_shops(CONFIG))
    return topics


def scratch_topic(name: str) -> str:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic = f"bench{uuid.uuid4().hex[:6]}.{name}"
    for future in admin.create_topics([NewTopic(topic, 6, 1)]).values():
        future.result(30)
    return topic


def plain_loop(topics: Topics) -> Measured:
    source = topics.event_topic_for("payment.succeeded") or ""
    target = scratch_topic("plain")
    consumer = Consumer(
        reader_config(BOOTSTRAP, group_id=f"bench-plain-{uuid.uuid4().hex}", auto_offset_reset="earliest")
    )
    consumer.subscribe([source])
    producer = idempotent_producer(BOOTSTRAP)
    moved = 0
    deadline = time.monotonic() + 300
    while moved < EVENTS and time.monotonic() < deadline:
        batch = [m for m in consumer.consume(500, 0.5) if m.error() is None]
        for message in batch:
            producer.produce(target, value=message.value(), key=message.key())
        if batch:
            assert producer.flush(30) == 0
            consumer.commit(asynchronous=False)
            moved += len(batch)
    consumer.close()
    return Measured(*written(target))


def faust_passthrough(topics: Topics, scratch: Path) -> Measured:
    target = scratch_topic("faust")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "BENCH_FAUST_APP": f"bench-faust-{uuid.uuid4().hex[:6]}",
        "BENCH_FAUST_DATADIR": str(scratch / "faust"),
        "BENCH_SOURCE": topics.event_topic_for("payment.succeeded") or "",
        "BENCH_TARGET": target,
    }
    agent = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "bench" / "faust_passthrough.py"), "worker", "-l", "warn"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(scratch / "faust.log").open("wb"),
    )
    try:
        wait_until(lambda: end_count(target) >= EVENTS, 600, "faust passed every record through")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
    return Measured(*written(target))


def end_count(topic: str) -> int:
    consumer = Consumer(reader_config(BOOTSTRAP))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        )
    finally:
        consumer.close()


def committed(group: str, topic: str) -> int:
    consumer = Consumer(reader_config(BOOTSTRAP, group_id=group))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        positions = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(max(position.offset, 0) for position in positions)
    finally:
        consumer.close()


def wait_until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not holds(condition):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting until {what}")
        time.sleep(0.5)


def holds(condition: object) -> bool:
    """The condition, asked again later when the broker could not answer this time."""
    try:
        return bool(condition())  # type: ignore[operator]
    except KafkaException:
        return False


def worker_env(topics: Topics, sandbox_url: str, **extra: str) -> dict[str, str]:
    return {
        **sandbox_channel_env(sandbox_url),
        **UNLIMITED,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "MALL_NOTIFY_TOPIC_PREFIX": topics.prefix,
        **extra,
    }


def router_alone(topics: Topics, scratch: Path, sandbox_url: str) -> Measured:
    worker = start_worker(scratch, worker_env(topics, sandbox_url, MALL_NOTIFY_LANES="router"), name="router")
    try:
        group = topics.prefix + "mall-notify"
        wait_until(
            lambda: committed(group, topics.event_topic_for("payment.succeeded") or "") >= EVENTS,
            600,
            "routed",
        )
    finally:
        worker.stop()
    counts = [written(topics.send_topic(channel)) for channel in topics.spec.send]
    dispatches = sum(count for count, _ in counts)
    assert dispatches == 3 * EVENTS, f"{dispatches} dispatches for {EVENTS} events"
    return Measured(EVENTS, max(seconds for _, seconds in counts))


def sandbox_stats(url: str) -> dict[str, dict[str, int]]:
    with urllib.request.urlopen(f"{url}/__sandbox__/stats", timeout=30) as reply:
        stats: dict[str, dict[str, int]] = json.load(reply)
        return stats


def accepted_messages(url: str) -> int:
    return sum(sandbox_stats(url)["messages"].values())


def tell_sandbox(url: str, path: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        f"{url}/__sandbox__/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def subscribe(url: str, openid: str, count: int) -> None:
    grant = {"appid": MP_APPID, "openid": openid, "template_id": MP_TEMPLATE, "count": count}
    tell_sandbox(url, "wechat/subscriptions", grant)


def end_to_end(topics: Topics, scratch: Path) -> Measured:
    sandbox = start_sandbox(scratch)
    try:
        subscribe(sandbox.url, BUYER["mp_openid"], EVENTS)
        worker = start_worker(scratch, worker_env(topics, sandbox.url), name="e2e")
        try:  # (the end offsets of a transactional topic count commit markers too: ask the sandbox)
            wait_until(lambda: accepted_messages(sandbox.url) >= 3 * EVENTS, 1800, "every message is sent")
        finally:
            worker.stop()  # a graceful stop commits the last outcomes
        delivered, seconds = written(topics.outcomes, lambda v: orjson.loads(v)["status"] == "delivered")
        accepted = accepted_messages(sandbox.url)
    finally:
        sandbox.stop()
    assert delivered == accepted == 3 * EVENTS, (
        f"{delivered} delivered, {accepted} accepted, {3 * EVENTS} wanted"
    )
    return Measured(EVENTS, seconds)


def oa_with_sms(scratch: Path, sms_latency_ms: int) -> Measured:
    """OA deliveries/s while the SMS lane is busy the whole time, its provider answering late or not."""
    topics = fresh(f"sms{sms_latency_ms}")
    sandbox = start_sandbox(scratch)
    try:
        if sms_latency_ms:
            tell_sandbox(sandbox.url, "faults", {"target": "SendSms", "latency_ms": sms_latency_ms})
        every = max(1, OA_EVENTS // SMS_EVENTS)
        buyer = {"user_id": "u-oa", "oa_openid": BUYER["oa_openid"]}
        events = [
            code_requested() if i % every == 0 else paid_order(i, buyer, None)
            for i in range(OA_EVENTS + SMS_EVENTS)
        ]
        publish_values(BOOTSTRAP, topics, events)
        oa_events = sum(1 for i in range(OA_EVENTS + SMS_EVENTS) if i % every)
        worker = start_worker(scratch, worker_env(topics, sandbox.url), name=f"oa-sms{sms_latency_ms}")
        try:
            wait_until(
                lambda: sandbox_stats(sandbox.url)["messages"].get("wechat_oa", 0) >= oa_events,
                900,
                "OA sent",
            )
            time.sleep(1.0)  # their outcomes are committed within a commit interval
        finally:
            worker.stop()
        count, seconds = written(topics.outcomes, lambda v: orjson.loads(v).get("channel") == "wechat_oa")
    finally:
        sandbox.stop()
    assert count == oa_events, f"{count} OA outcomes for {oa_events} OA events"
    return Measured(count, seconds)


def versions() -> str:
    pom = (PROJECT_ROOT / "deploy" / "kafka-local" / "pom.xml").read_text()
    kafka = pom.split("<kafka.version>")[1].split("<")[0]
    return (
        f"Python {platform.python_version()}, confluent-kafka {confluent_kafka.version()[0]} "
        f"(librdkafka {confluent_kafka.libversion()[0]}), faust-streaming {version('faust-streaming')}, "
        f"aiohttp {version('aiohttp')}, Apache Kafka {kafka} (one KRaft node, local)"
    )


def report(results: dict[str, Measured]) -> str:
    plain = results["plain"].rate
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        (
            "plain confluent-kafka loop: consume → produce the same bytes → commit, per batch",
            "plain",
            "records/s",
        ),
        ("faust agent passing each record through (`await topic.send`)", "faust", "records/s"),
        (
            "our router alone: parse → route → render → 3 dispatches, committed in transactions",
            "router",
            "events/s",
        ),
        ("pipeline end to end: router, 3 senders, sandbox, every outcome committed", "e2e", "events/s"),
    ]
    table = "\n".join(
        f"| {label} | **{results[key].rate:,.0f}** {unit} | {results[key].rate / plain:.3f}× |"
        for label, key, unit in rows
    )
    healthy, slow = results["oa_healthy"], results["oa_slow_sms"]
    return f"""# Benchmarks

Written by `make bench` (`bench/pipeline_bench.py`) on {now}: {platform.platform()}, {os.cpu_count()} cores;
{versions()}. One worker, the provider sandbox on loopback, all on this machine at once.
Every figure is checked before it is reported: the records passed through, the {3 * EVENTS:,} dispatches
and outcomes written, the messages accepted by the sandbox. Rates run from the Kafka timestamp of the
first record written to the last. Numbers vary with the machine: compare ratios within one run.

## Throughput on the same {EVENTS:,} preloaded paid orders (3 deliveries each)

| what | rate | × the plain loop |
|---|---|---|
{table}

Targets (ratios in the same run): router ≥ 0.15×, end to end ≥ 0.05×.

## A slow provider slows only its own channel

{OA_EVENTS:,} paid orders (one WeChat OA message each) and {SMS_EVENTS:,} login codes (Aliyun SMS) in one
stream; the SMS lane is busy throughout, its provider answering at once or after 2 s.

| SMS provider | WeChat OA deliveries/s |
|---|---|
| answers at once | {healthy.rate:,.0f} |
| answers in 2 s | {slow.rate:,.0f} ({slow.rate / healthy.rate:.2f}× ; target ≥ 0.9×) |
"""


def main() -> None:
    results: dict[str, Measured] = {}
    preloaded = [paid_order(i, BUYER, SELLER) for i in range(EVENTS)]
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        for name, run in (
            ("plain", lambda t: plain_loop(t)),
            ("faust", lambda t: faust_passthrough(t, scratch)),
            ("router", lambda t: router_alone(t, scratch, "http://127.0.0.1:9")),
            ("e2e", lambda t: end_to_end(t, scratch)),
        ):
            topics = fresh(name)
            publish_values(BOOTSTRAP, topics, preloaded)
            results[name] = run(topics)
            print(f"{name}: {results[name].rate:,.0f}/s", flush=True)
        results["oa_healthy"] = oa_with_sms(scratch, 0)
        results["oa_slow_sms"] = oa_with_sms(scratch, 2000)
        healthy, slow = results["oa_healthy"].rate, results["oa_slow_sms"].rate
        print(f"OA with healthy SMS {healthy:,.0f}/s, with slow SMS {slow:,.0f}/s")
    target = PROJECT_ROOT / "docs" / "BENCHMARKS.md"
    target.write_text(report(results))
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
