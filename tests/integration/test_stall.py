"""A consumer that holds its partitions and stops taking records (the failure faust users meet
most) is found: its lag grows, the partition is reported stalled on /readyz and in the gauge, and
all of it clears once records move again. In-process worker on the real broker and sandbox."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from channels.base import ChannelName
from streams.devtools.demo import Settlement
from streams.devtools.upstream import publish_values
from streams.ops.reading import end_offsets, read_until
from streams.runtime.lanes.router import RouterLane
from streams.runtime.worker import run_worker
from tests.conftest import Sandbox
from tests.factories import payment_event, to_bytes
from tests.integration.in_process import prepared_worker, until

pytestmark = pytest.mark.integration
EVENTS = 5


def _lag(lane: str) -> float:
    """The lane's lag as last reported (on /readyz and /metrics)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "mall_notify_consumer_lag"
        for sample in metric.samples
        if sample.labels.get("lane") == lane
    )


def _router_lag() -> float:
    return _lag("router")


async def test_a_consumer_that_stops_taking_records_is_reported_stalled_until_it_moves(
    kafka_bootstrap: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = await prepared_worker(kafka_bootstrap, sandbox, "stall", stall_seconds=3)
    topics = worker.topics
    frozen, thawed = asyncio.Event(), asyncio.Event()
    room = RouterLane.room

    async def freezable(lane: RouterLane, stopping: asyncio.Event) -> int:
        if frozen.is_set():
            await thawed.wait()  # holds its partitions, takes nothing: what a hung agent looks like
        return await room(lane, stopping)

    monkeypatch.setattr(RouterLane, "room", freezable)
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(worker, stop))
    try:
        await until(lambda: worker.readiness.report()[0], 60, "the worker is ready")
        frozen.set()
        await asyncio.sleep(0.5)  # the lane is now waiting in room()
        start = await asyncio.to_thread(end_offsets, kafka_bootstrap, topics.outcomes)
        events = [to_bytes(payment_event()) for _ in range(EVENTS)]
        published = await asyncio.to_thread(publish_values, kafka_bootstrap, topics, events)

        def stalled() -> list[str]:
            return list(worker.readiness.report()[1]["lanes"]["router"]["stalled"])

        await until(lambda: bool(stalled()), 30, "the frozen router is reported stalled")
        ready, body = worker.readiness.report()
        assert not ready
        assert body["lanes"]["router"]["lag"] >= 1
        assert body["lanes"]["router"]["in_flight"] == 0  # nothing unfinished: only the lag shows it
        assert REGISTRY.get_sample_value("mall_notify_partitions_stalled", {"lane": "router"}) >= 1
        assert REGISTRY.get_sample_value("mall_notify_ready", {}) == 0
        assert _router_lag() >= 1

        thawed.set()
        records = await asyncio.to_thread(
            read_until, kafka_bootstrap, topics.outcomes, start, Settlement(published), 60
        )
        assert Settlement(published)(records)
        await until(lambda: worker.readiness.report()[0], 30, "the worker is ready again")
        await until(lambda: _router_lag() == 0, 30, "the lag is gone")
        # the OA sender reads what the router wrote in transactions: the commit marker after its
        # last record is never read, and is no lag either
        [oa] = [lane for lane in worker.lanes if lane.name == "send.wechat_oa"]
        written = await asyncio.to_thread(
            end_offsets, kafka_bootstrap, worker.topics.send_topic(ChannelName.WECHAT_OA)
        )
        await until(
            lambda: {p: end.end for (_, p), end in oa.ends.items()} == written,
            30,
            "the OA sender knows where its partitions end, commit markers included",
        )
        assert sum(written.values()) > 0
        await until(lambda: not any(oa.lag().values()), 30, "no lag left behind a transaction's marker")
        worker.readiness.report()
        assert _lag("send.wechat_oa") == 0
        assert REGISTRY.get_sample_value("mall_notify_partitions_stalled", {"lane": "router"}) == 0
    finally:
        thawed.set()
        stop.set()
        await asyncio.wait_for(running, timeout=60)
